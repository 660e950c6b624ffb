/*
 * rread.c - random-access reads from /dev/input.
 *
 *   rread 0 100 7      prints 16 bytes of /dev/input at each offset, then "\n"
 *
 * /dev/input must be a random-get channel (type 1 or 3); reads near its end
 * return fewer bytes, reads at or past the end return 0 (an empty line).
 * Exit code: 0; 1 if a call failed; 2 on a bad argument or no /dev/input.
 */
#include <zvm.h>

/* Parse a non-negative decimal number; -1 if s is not one. */
int main(int argc, char **argv)
{
    char buf[16];
    int in = zvm_channel("/dev/input");

    if (in < 0) {
        zvm_puts(2, "rread: no /dev/input channel\n");
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        int64_t off = zvm_parse_u64(argv[i]);
        if (off < 0) {
            zvm_puts(2, "rread: bad offset: ");
            zvm_puts(2, argv[i]);
            zvm_puts(2, "\n");
            return 2;
        }
        int64_t n = zvm_pread(in, buf, sizeof buf, off);
        if (n < 0 || zvm_write_all(1, buf, n) != n || zvm_puts(1, "\n") < 0)
            return 1;
    }
    return 0;
}
