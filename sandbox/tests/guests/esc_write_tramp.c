/*
 * esc_write_tramp.c - write to the trampoline page (0x10000).
 *
 * Prints "started=1". Expect: SIGSEGV (the page is r-x), return code 4.
 * "reached=1" means the write succeeded.
 */
#include <zvm.h>

int main(void)
{
    volatile unsigned char *tramp = (volatile unsigned char *)ZVM_TRAMPOLINE;

    zvm_puts(1, "started=1\n");
    *tramp = 0xc3;
    zvm_puts(1, "reached=1\n");
    return 0;
}
