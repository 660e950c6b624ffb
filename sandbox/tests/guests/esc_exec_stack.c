/*
 * esc_exec_stack.c - execute a `ret` (c3) written to the stack.
 *
 * Prints "started=1". Expect: SIGSEGV (the stack is rw-), return code 4.
 * "reached=1" means the stack ran as code.
 */
#include <zvm.h>

int main(void)
{
    volatile unsigned char code[16];
    void (*volatile fn)(void) = (void (*)(void))(uintptr_t)code;

    code[0] = 0xc3; /* ret */
    zvm_puts(1, "started=1\n");
    fn();
    zvm_puts(1, "reached=1\n");
    return 0;
}
