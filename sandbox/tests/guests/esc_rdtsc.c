/*
 * esc_rdtsc.c - `rdtsc`, a source of nondeterminism the jail forbids.
 *
 * Expect: the validator rejects the image: return code 8, no output.
 * "reached=1" means the instruction ran.
 */
#include <zvm.h>

int main(void)
{
    uint32_t lo, hi;

    zvm_puts(1, "started=1\n");
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    zvm_puts(1, "tsc=");
    zvm_put_int(1, (int64_t)((uint64_t)hi << 32 | lo));
    zvm_puts(1, "\nreached=1\n");
    return 0;
}
