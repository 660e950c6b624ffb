/*
 * esc_int80.c - the 32-bit system call gate `int $0x80` (getpid, nr 20).
 *
 * Expect: the validator rejects the image: return code 8, no output. If it
 * ever ran, seccomp must kill it (code 4). "reached=1" means the escape worked.
 */
#include <zvm.h>

/* The register variable is set right before the asm: a call in between
 * (zvm_puts) could clobber rax, and gcc would not reload it. */
static long raw_int80(long nr)
{
    register long rax __asm__("rax") = nr;
    /* A 64-bit kernel zeroes r8-r11 on return from int $0x80. */
    __asm__ volatile("int $0x80" : "+r"(rax) : : "r8", "r9", "r10", "r11", "memory");
    return rax;
}

int main(void)
{
    zvm_puts(1, "started=1\n");
    long pid = raw_int80(20); /* getpid in the i386 table */
    zvm_puts(1, "pid=");
    zvm_put_int(1, pid);
    zvm_puts(1, "\nreached=1\n");
    return 0;
}
