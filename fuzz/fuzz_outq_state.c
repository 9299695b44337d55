/* fuzz_outq_state.c: the queue runner's per-recipient state file
 * (smtp/outq_state.c). Whatever parses must format back into bytes that
 * parse to the same state (a fixed point), with every field bounded. */
#include "smtp/outq.h"
#include "smtp/queue.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct outq_state st;
    if (outq_state_parse((const char *)data, size, &st) < 0) {
        if (st.n != 0 || st.r != NULL)
            abort();
        return 0;
    }
    if (st.n > QUEUE_MAX_RCPTS)
        abort();
    struct buf b = {0};
    if (outq_state_format(&st, &b) < 0)
        abort();
    struct outq_state again;
    if (outq_state_parse(b.data, b.len, &again) < 0 || again.n != st.n)
        abort();
    for (size_t i = 0; i < st.n; i++) {
        const struct outq_rstate *x = &st.r[i], *y = &again.r[i];
        if (strcmp(x->addr, y->addr) != 0 || x->status != y->status ||
            x->attempts != y->attempts || x->next_try != y->next_try ||
            strcmp(x->last, y->last) != 0 || strlen(x->last) >= OUTQ_REPLY_MAX)
            abort();
    }
    outq_state_free(&again);
    outq_state_free(&st);
    buf_free(&b);
    return 0;
}
