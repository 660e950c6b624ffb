/*
 * esc_syscall.c - a plain `syscall` instruction (getpid) in the guest's code.
 *
 * Expect: the validator's sweep rejects the image before it runs: return
 * code 8, validator state 1, no output. If it ever ran, seccomp must kill it
 * (code 4). "reached=1" on stdout means the escape worked.
 */
#include <zvm.h>

/* The register variable is set right before the asm: a call in between
 * (zvm_puts) could clobber rax, and gcc would not reload it. */
static long raw_syscall(long nr)
{
    register long rax __asm__("rax") = nr;
    __asm__ volatile("syscall" : "+r"(rax) : : "rcx", "r11", "memory");
    return rax;
}

int main(void)
{
    zvm_puts(1, "started=1\n");
    long pid = raw_syscall(39); /* getpid */
    zvm_puts(1, "pid=");
    zvm_put_int(1, pid);
    zvm_puts(1, "\nreached=1\n");
    return 0;
}
