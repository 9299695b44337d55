/* sqlheap.h: SQLite's own heap, apart from malloc's.
 *
 * A folder's index connection lives as long as its session is active and is
 * closed when the session hibernates. Made from malloc, its memory shares
 * pages with small objects that stay (in the worker threads' arenas most of
 * all), and what it frees stays resident: about 16 KiB per idle connection.
 * Here SQLite gets size-classed slabs of its own, carved from mmap'd
 * regions and handed back to the kernel (MADV_DONTNEED) when empty, so
 * closing connections gives their pages back. */
#ifndef CM_STORE_SQLHEAP_H
#define CM_STORE_SQLHEAP_H

#include <sqlite3.h>
#include <stddef.h>

/* SQLITE_CONFIG_MALLOC with this heap; before SQLite initialises. 0 or -1. */
int sqlheap_install(void);
/* Bytes SQLite's blocks may occupy right now: slabs not given back, plus
 * the big blocks taken from malloc (for tests). */
size_t sqlheap_mapped(void);
/* The methods themselves, for tests that drive the heap directly. */
const sqlite3_mem_methods *sqlheap_methods(void);

#endif
