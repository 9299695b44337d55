/* sanitizer_options.c: ASan defaults linked into every fuzz harness (the
 * environment's ASAN_OPTIONS still win, key by key).
 *
 * quarantine_size_mb=16 (ASan's default is 256): freed memory stays
 * poisoned for the next 16 MiB of frees, far more than one input frees, so
 * a use after free within an input is still caught. With 256 MiB every
 * allocation lands on memory the process has not touched for a long time
 * or that ASan gave back to the kernel, and the page faults (with TLB
 * shootdowns, costly on a VM) took half of the time of the small harnesses
 * (fuzz_config: 5.2 s -> 2.5 s of CPU for the same 30,000 inputs).
 *
 * malloc_context_size=2 (default 30): ASan records 2 frames of the stack
 * of every malloc and free instead of 30; unwinding and storing those
 * stacks was ~6 % of fuzz_imap_session's time (40,000 runs with one seed:
 * 8.5 -> 7.9 s). A report still shows the whole stack of the bad access;
 * for the full allocation and free stacks, rerun the input with
 * ASAN_OPTIONS=malloc_context_size=30. */
const char *__asan_default_options(void);

const char *__asan_default_options(void)
{
    return "quarantine_size_mb=16:malloc_context_size=2";
}
