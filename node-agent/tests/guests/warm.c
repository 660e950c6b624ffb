/*
 * warm.c - a guest for warm daemons: its start-up reads /dev/input (the one
 * thing it does before zvm_fork), then each copy prints what the start-up
 * read and the copy's own /dev/stdin:
 *   "init read: INPUT stdin: STDIN\n"
 * Outside a daemon zvm_fork fails: prints "no fork" and exits 3.
 */
#include <zvm.h>

static char seen[64];
static int64_t seen_len;

int main(void)
{
    int in = zvm_channel("/dev/input");
    seen_len = in >= 0 ? zvm_pread(in, seen, sizeof seen - 1, 0) : 0;
    if (seen_len < 0) seen_len = 0;
    if (zvm_fork() != 0) {
        zvm_puts(1, "no fork\n");
        return 3;
    }
    char buf[64];
    int64_t n = zvm_pread(0, buf, sizeof buf - 1, 0);
    if (n < 0) n = 0;
    zvm_puts(1, "init read: ");
    zvm_write_all(1, seen, seen_len);
    zvm_puts(1, " stdin: ");
    zvm_write_all(1, buf, n);
    zvm_puts(1, "\n");
    return 0;
}
