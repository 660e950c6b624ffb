/*
 * loop.c - spin forever, for the manifest's Timeout.
 *
 * Prints "started=1", then never calls again. Expect: killed at Timeout:
 * return code 4, exit state "session timeout". "reached=1" is never printed.
 */
#include <zvm.h>

int main(void)
{
    zvm_puts(1, "started=1\n");
    for (;;)
        __asm__ volatile(""); /* a side effect the compiler must keep */
    zvm_puts(1, "reached=1\n");
    return 0;
}
