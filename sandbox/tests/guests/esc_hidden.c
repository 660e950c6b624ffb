/*
 * esc_hidden.c - a `syscall` hidden inside another instruction.
 *
 * hidden_gadget is `mov $0x050f9090, %eax; ret` = b8 90 90 0f 05 c3, which a
 * linear sweep decodes as harmless. Entered at +3 it is `syscall; ret`. We
 * enter it there with rax = 39 (getpid).
 *
 * Expect: passes validation, prints "started=1", then seccomp kills the guest
 * (the system call does not come from the trampoline page): return code 4,
 * exit state naming the signal. "reached=1" means the escape worked.
 */
#include <zvm.h>

void hidden_gadget(void);
__asm__(".text\n"
        ".globl hidden_gadget\n"
        ".type hidden_gadget, @function\n"
        "hidden_gadget:\n"
        "    mov $0x050f9090, %eax\n" /* bytes 3-4 of this are 0f 05 */
        "    ret\n"
        ".size hidden_gadget, . - hidden_gadget\n");

/* Call `target` with rax = nr. The register variable is set right before
 * the asm: a call in between (zvm_puts) could clobber rax unnoticed. */
static long call_with_rax(uintptr_t target, long nr)
{
    register long rax __asm__("rax") = nr;
    /* Step over the red zone: the call pushes a return address. */
    __asm__ volatile("sub $128, %%rsp\n\t"
                     "call *%[t]\n\t"
                     "add $128, %%rsp"
                     : "+r"(rax)
                     : [t] "r"(target)
                     : "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "memory", "cc");
    return rax;
}

int main(void)
{
    zvm_puts(1, "started=1\n");
    long pid = call_with_rax((uintptr_t)&hidden_gadget + 3, 39); /* getpid */
    zvm_puts(1, "pid=");
    zvm_put_int(1, pid);
    zvm_puts(1, "\nreached=1\n");
    return 0;
}
