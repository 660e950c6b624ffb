/*
 * esc_beyond_heap.c - write one page past the end of the heap
 * (heap_ptr + heap_size + 4096).
 *
 * Prints "started=1" and "target=ADDR" (decimal). Expect: SIGSEGV, return
 * code 4. "reached=1" means memory beyond the heap was writable.
 */
#include <zvm.h>

int main(void)
{
    volatile unsigned char *target =
        (volatile unsigned char *)MANIFEST->heap_ptr + MANIFEST->heap_size + 4096;

    zvm_puts(1, "started=1\ntarget=");
    zvm_put_int(1, (int64_t)(uintptr_t)target);
    zvm_puts(1, "\n");
    *target = 1;
    zvm_puts(1, "reached=1\n");
    return 0;
}
