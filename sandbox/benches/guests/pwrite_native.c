/* pwrite_native.c - native comparison for pwrite_loop.c: N one-byte
 * pwrite(2) calls to stdout. */
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 0;
    for (long i = 0; i < n; i++)
        if (pwrite(1, "x", 1, 0) != 1) return 1;
    return 0;
}
