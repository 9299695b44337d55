/* fuzz_queue_envelope.c: arbitrary bytes as a queue file's envelope. */
#include <stdint.h>

#include "smtp/queue.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct queue_envelope env;
    if (queue_parse_envelope((const char *)data, size, &env) == 0) {
        if (env.body_offset > size)
            __builtin_trap();
        queue_envelope_free(&env);
    }
    return 0;
}
