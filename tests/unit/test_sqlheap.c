/* test_sqlheap.c: SQLite's own heap - blocks keep their bytes, sizes and
 * alignment, realloc moves contents, emptied slabs are unmapped, and a real
 * database works on it from several threads. */
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "store/sqlheap.h"

#define N_BLOCKS 4000

static uint32_t rnd_state = 12345;
static uint32_t rnd(void)
{
    rnd_state = rnd_state * 1103515245u + 12345u;
    return rnd_state >> 8;
}

static int pick_size(void)
{
    uint32_t r = rnd() % 100;
    if (r < 70)
        return 1 + (int)(rnd() % 512);
    if (r < 95)
        return 1 + (int)(rnd() % 20000);
    return 20000 + (int)(rnd() % 200000); /* own mappings */
}

TEST(blocks_keep_their_bytes)
{
    const sqlite3_mem_methods *m = sqlheap_methods();
    size_t base = sqlheap_mapped();
    static unsigned char *p[N_BLOCKS];
    static int len[N_BLOCKS];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N_BLOCKS; i++) {
            if (p[i] && rnd() % 2) {
                for (int k = 0; k < len[i]; k++)
                    if (p[i][k] != (unsigned char)(i + k)) {
                        CHECK(!"block content changed");
                        return;
                    }
                if (rnd() % 2) {
                    m->xFree(p[i]);
                    p[i] = NULL;
                } else { /* realloc keeps the common prefix */
                    int n = pick_size();
                    unsigned char *q = m->xRealloc(p[i], n);
                    CHECK(q != NULL);
                    int keep = n < len[i] ? n : len[i];
                    for (int k = 0; k < keep; k++)
                        CHECK(q[k] == (unsigned char)(i + k));
                    p[i] = q;
                    len[i] = n;
                    for (int k = 0; k < n; k++)
                        q[k] = (unsigned char)(i + k);
                }
            }
            if (!p[i]) {
                len[i] = pick_size();
                p[i] = m->xMalloc(len[i]);
                CHECK(p[i] != NULL);
                CHECK(((uintptr_t)p[i] & 15) == 0);
                CHECK(m->xSize(p[i]) >= len[i]);
                CHECK(m->xRoundup(len[i]) == m->xSize(p[i]));
                for (int k = 0; k < len[i]; k++)
                    p[i][k] = (unsigned char)(i + k);
            }
        }
    }
    CHECK(sqlheap_mapped() > base);
    for (int i = 0; i < N_BLOCKS; i++) {
        m->xFree(p[i]);
        p[i] = NULL;
    }
    /* at most one empty 64 KiB slab per size class stays mapped */
    CHECK(sqlheap_mapped() - base <= (size_t)24 * 64 * 1024);
    CHECK(m->xMalloc(0) == NULL);
    m->xFree(NULL);
    CHECK(m->xSize(NULL) == 0);
}

static void *db_worker(void *arg)
{
    const char *path = arg;
    sqlite3 *db = NULL;
    int ok = sqlite3_open(path, &db) == SQLITE_OK &&
             sqlite3_exec(db, "PRAGMA busy_timeout=5000;", NULL, NULL, NULL) == SQLITE_OK;
    for (int i = 0; ok && i < 200; i++) {
        char sql[512];
        snprintf(sql, sizeof sql, "INSERT INTO t(v) VALUES('%0*d');", 1 + i % 300, i);
        ok = sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK;
    }
    sqlite3_close(db);
    return ok ? arg : NULL;
}

TEST(sqlite_runs_on_it)
{
    char dir[] = "/tmp/cm-sqlheap-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[128];
    snprintf(path, sizeof path, "%s/t.sqlite", dir);
    sqlite3 *db = NULL;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, "PRAGMA journal_mode=WAL; CREATE TABLE t(v TEXT);", NULL, NULL,
                       NULL) == SQLITE_OK);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, db_worker, path);
    for (int i = 0; i < 4; i++) {
        void *r = NULL;
        pthread_join(th[i], &r);
        CHECK(r != NULL);
    }
    sqlite3_stmt *st = NULL;
    CHECK(sqlite3_prepare_v2(db, "SELECT count(*) FROM t", -1, &st, NULL) == SQLITE_OK);
    CHECK(sqlite3_step(st) == SQLITE_ROW);
    CHECK_INT_EQ(sqlite3_column_int(st, 0), 800);
    sqlite3_finalize(st);
    size_t open_bytes = sqlheap_mapped();
    sqlite3_close(db);
    CHECK(sqlheap_mapped() <= open_bytes);
    CHECK(sqlite3_memory_used() < 200 * 1024); /* nothing kept after the close */
    unlink(path);
    char wal[160];
    snprintf(wal, sizeof wal, "%s-wal", path);
    unlink(wal);
    snprintf(wal, sizeof wal, "%s-shm", path);
    unlink(wal);
    rmdir(dir);
}

int main(void)
{
    CHECK(sqlheap_install() == 0);
    RUN(blocks_keep_their_bytes);
    RUN(sqlite_runs_on_it);
    return check_report();
}
