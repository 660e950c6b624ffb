/*
 * esc_tramp.c - borrow the trampoline's own `syscall` instruction.
 *
 *   esc_tramp nr [NR]   a forbidden call number (default 57, fork; 39, getpid, also fits)
 *   esc_tramp fd [FD]   write(FD, "x", 1) on a descriptor that is no channel (default 1000)
 *
 * Scans the readable trampoline page at ZVM_TRAMPOLINE for the bytes 0f 05 and
 * calls that address with the registers set, so the system call comes from
 * the page seccomp trusts: the filter must still refuse the number or the
 * descriptor.
 *
 * Prints "started=1", then "gadget=OFFSET" (offset of 0f 05 in the page).
 * Expect: the guest is killed, return code 4, exit state "forbidden call N
 * (...) at 0x1XXXX". "reached=1" (after "ret=RESULT") means the call returned:
 * the escape worked (even ret=-9, -EBADF: the guest reached the kernel with a
 * raw descriptor). Exit code 2 with "gadget=none" if the page holds no 0f 05
 * (inconclusive), or on a usage error.
 */
#include <zvm.h>

#include "gadget.h"

int main(int argc, char **argv)
{
    static const char byte[] = "x";
    int fd_mode = argc > 1 && !strcmp(argv[1], "fd");
    if (argc < 2 || (!fd_mode && strcmp(argv[1], "nr"))) {
        zvm_puts(2, "usage: esc_tramp nr [NR] | esc_tramp fd [FD]\n");
        return 2;
    }
    int64_t value = argc > 2 ? zvm_parse_u64(argv[2]) : fd_mode ? 1000 : 57 /* fork */;
    if (value < 0) {
        zvm_puts(2, "usage: esc_tramp nr [NR] | esc_tramp fd [FD]\n");
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

    uintptr_t gadget = ZVM_TRAMPOLINE + (uintptr_t)off;
    long r = fd_mode ? call_gadget(gadget, 1 /* write */, value, (long)(uintptr_t)byte, 1, 0)
                     : call_gadget(gadget, value, 0, 0, 0, 0);
    zvm_puts(1, "ret=");
    zvm_put_int(1, r);
    zvm_puts(1, "\nreached=1\n");
    return 0;
}
