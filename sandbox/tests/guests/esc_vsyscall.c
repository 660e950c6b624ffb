/*
 * esc_vsyscall.c - call the legacy vsyscall page (gettimeofday at
 * 0xffffffffff600000), a fixed kernel entry that bypasses the trampoline.
 *
 * Prints "started=1". Expect: the guest is killed, return code 4: SIGSEGV
 * where vsyscalls are disabled (vsyscall=none); otherwise the kernel emulates
 * the call and runs the seccomp filter on it, which must kill the guest.
 * "reached=1" (after "ret=RESULT") means the call returned: escape worked.
 */
#include <zvm.h>

/* gettimeofday(NULL, NULL) through the vsyscall page. The register
 * variables are set right before the asm, with no call in between. */
static long vsyscall_gettimeofday(void)
{
    uintptr_t target = 0xffffffffff600000UL; /* vsyscall slot 0: gettimeofday */
    register long rax __asm__("rax") = 96;   /* its number, for good measure */
    register long rdi __asm__("rdi") = 0;    /* tv = NULL */
    register long rsi __asm__("rsi") = 0;    /* tz = NULL */
    /* Step over the red zone: the call pushes a return address. */
    __asm__ volatile("sub $128, %%rsp\n\t"
                     "call *%[t]\n\t"
                     "add $128, %%rsp"
                     : "+r"(rax), "+r"(rdi), "+r"(rsi)
                     : [t] "r"(target)
                     : "rcx", "rdx", "r8", "r9", "r10", "r11", "memory", "cc");
    return rax;
}

int main(void)
{
    zvm_puts(1, "started=1\n");
    long r = vsyscall_gettimeofday();
    zvm_puts(1, "ret=");
    zvm_put_int(1, r);
    zvm_puts(1, "\nreached=1\n");
    return 0;
}
