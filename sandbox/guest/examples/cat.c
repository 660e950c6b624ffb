/*
 * cat.c - copy /dev/stdin to /dev/stdout.
 *
 * Sequential channels ignore the offset and return 0 at the end of data.
 * Exit code: 0 on success, 1 if a read or write failed (e.g. -EDQUOT).
 */
#include <zvm.h>

/* Static, not on the stack: the guest stack is small and fixed. */
static char buf[256 * 1024];

int main(void)
{
    for (;;) {
        int64_t n = zvm_pread(0, buf, sizeof buf, 0);
        if (n == 0)
            return 0; /* end of data */
        if (n < 0 || zvm_write_all(1, buf, n) != n)
            return 1;
    }
}
