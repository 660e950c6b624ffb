/*
 * esc_exec_heap.c - execute a `ret` (c3) written to the heap, without
 * zvm_jail (which is the only way heap code may run).
 *
 * Prints "started=1". Expect: SIGSEGV (the heap is rw-), return code 4.
 * "reached=1" means the heap ran as code. Exit code 2 if zvm_sbrk failed
 * (heap_size 0: inconclusive).
 */
#include <zvm.h>

int main(void)
{
    volatile unsigned char *code = zvm_sbrk(16);
    if (code == (void *)-1)
        return 2;
    void (*volatile fn)(void) = (void (*)(void))(uintptr_t)code;

    code[0] = 0xc3; /* ret */
    zvm_puts(1, "started=1\n");
    fn();
    zvm_puts(1, "reached=1\n");
    return 0;
}
