/* hello.c - the smallest guest: one write to /dev/stdout (channel 1). */
#include <zvm.h>

int main(void)
{
    /* zvm_puts loops over short writes; a negative result is an error. */
    return zvm_puts(1, "Hello, World!\n") < 0;
}
