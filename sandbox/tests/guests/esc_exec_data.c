/*
 * esc_exec_data.c - execute a `ret` (c3) stored in .data.
 *
 * .data is never scanned by the validator, so it must not be executable.
 * Prints "started=1". Expect: SIGSEGV, return code 4. "reached=1" means the
 * data ran as code.
 */
#include <zvm.h>

static volatile unsigned char code[16] = {0xc3}; /* ret */

int main(void)
{
    void (*volatile fn)(void) = (void (*)(void))(uintptr_t)code;

    zvm_puts(1, "started=1\n");
    fn();
    zvm_puts(1, "reached=1\n");
    return 0;
}
