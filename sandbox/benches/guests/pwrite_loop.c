/* pwrite_loop.c - per-call overhead guest: N one-byte zvm_pwrite calls to
 * /dev/stdout (argv[1] = N). Exit 1 if a call fails. */
#include <zvm.h>
int main(int argc, char **argv)
{
    int64_t n = argc > 1 ? zvm_parse_u64(argv[1]) : 0;
    for (int64_t i = 0; i < n; i++)
        if (zvm_pwrite(1, "x", 1, 0) != 1) return 1;
    return 0;
}
