/*
 * esc_cpuid.c - `cpuid`, which reveals the host and is forbidden.
 *
 * Expect: the validator rejects the image: return code 8, no output.
 * "reached=1" means the instruction ran.
 */
#include <zvm.h>

int main(void)
{
    uint32_t a = 0, b, c = 0, d;

    zvm_puts(1, "started=1\n");
    __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
    zvm_puts(1, "max_leaf=");
    zvm_put_int(1, a);
    zvm_puts(1, "\nreached=1\n");
    (void)b, (void)c, (void)d;
    return 0;
}
