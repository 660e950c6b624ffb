/*
 * esc_tramp_fd.c - borrow the trampoline's `syscall` to write to an fd that
 * is not a channel.
 *
 *   esc_tramp_fd [FD]      FD defaults to 1000
 *
 * Scans the trampoline page (0x10000, 4 KiB) for the bytes 0f 05 and calls
 * that address with rax = 1 (write), rdi = FD, rsi = "x", rdx = 1: an allowed
 * call number from the trusted page, but on a descriptor the jail's filter
 * must not allow.
 *
 * Prints "started=1", then "gadget=OFFSET". Expect: seccomp kills the guest:
 * return code 4 (check the exit state names the signal too). "reached=1"
 * (after "ret=RESULT") means the call returned: the escape worked, even with
 * ret=-9 (-EBADF), since the guest reached the kernel with a raw descriptor.
 * Exit code 2 with "gadget=none" if the page holds no 0f 05 (inconclusive).
 */
#include <zvm.h>

static int64_t parse_i64(const char *s)
{
    int64_t v = 0;
    if (!*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (INT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (*s - '0');
    }
    return v;
}

/* Offset of the first 0f 05 in the trampoline page, or -1. */
static int64_t find_syscall(void)
{
    const volatile unsigned char *page = (const volatile unsigned char *)ZVM_TRAMPOLINE;
    for (int64_t i = 0; i + 1 < 4096; i++)
        if (page[i] == 0x0f && page[i + 1] == 0x05)
            return i;
    return -1;
}

/* Jump to `target` with the system call registers set; it returns in rax. */
static long call_gadget(uintptr_t target, long nr, long a1, long a2, long a3)
{
    register long rax __asm__("rax") = nr;
    register long rdi __asm__("rdi") = a1;
    register long rsi __asm__("rsi") = a2;
    register long rdx __asm__("rdx") = a3;
    /* Step over the red zone: the call pushes a return address. */
    __asm__ volatile("sub $128, %%rsp\n\t"
                     "call *%[t]\n\t"
                     "add $128, %%rsp"
                     : "+r"(rax), "+r"(rdi), "+r"(rsi), "+r"(rdx)
                     : [t] "r"(target)
                     : "rcx", "r8", "r9", "r10", "r11", "memory", "cc");
    return rax;
}

int main(int argc, char **argv)
{
    static const char byte[] = "x";
    int64_t fd = argc > 1 ? parse_i64(argv[1]) : 1000;
    if (fd < 0) {
        zvm_puts(2, "usage: esc_tramp_fd [FD]\n");
        return 2;
    }
    zvm_puts(1, "started=1\n");
    int64_t off = find_syscall();
    if (off < 0) {
        zvm_puts(1, "gadget=none\n");
        return 2;
    }
    zvm_puts(1, "gadget=");
    zvm_put_int(1, off);
    zvm_puts(1, "\n");

    long r = call_gadget(ZVM_TRAMPOLINE + (uintptr_t)off, 1 /* write */, fd, (long)(uintptr_t)byte, 1);
    zvm_puts(1, "ret=");
    zvm_put_int(1, r);
    zvm_puts(1, "\nreached=1\n");
    return 0;
}
