/*
 * esc_write_code.c - write into the guest's own code (main's first byte).
 *
 * The byte written is the one already there, so if the write were allowed
 * the program would carry on unchanged and report it.
 * Prints "started=1". Expect: SIGSEGV (code is r-x), return code 4.
 * "reached=1" means the write succeeded.
 */
#include <zvm.h>

int main(void)
{
    volatile unsigned char *code = (volatile unsigned char *)(uintptr_t)&main;

    zvm_puts(1, "started=1\n");
    *code = *code;
    zvm_puts(1, "reached=1\n");
    return 0;
}
