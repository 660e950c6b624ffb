/*
 * esc_hidden_time.c - `rdtsc`, `rdtscp` or `cpuid` (argv[1]) hidden inside
 * another instruction, where the validator's linear sweep does not see it.
 *
 * Each gadget is `mov $imm32, %eax; ret` whose immediate holds the hidden
 * instruction and a `ret`: entered at +1 it is `rdtsc; ret` (0f 31 c3),
 * `rdtscp; ret` (0f 01 f9 c3) or `cpuid; ret` (0f a2 c3).
 *
 * Expect: passes validation, prints "started=1", then the instruction
 * faults (the loader made it fault with PR_SET_TSC / ARCH_SET_CPUID) and
 * the guest is killed by signal 11: return code 4. "reached=1" and a value
 * mean the instruction ran.
 */
#include <zvm.h>

void hidden_rdtsc(void);
void hidden_rdtscp(void);
void hidden_cpuid(void);
__asm__(".text\n"
        ".globl hidden_rdtsc\n"
        ".type hidden_rdtsc, @function\n"
        "hidden_rdtsc:\n"
        "    mov $0x90c3310f, %eax\n" /* b8 0f 31 c3 90 */
        "    ret\n"
        ".size hidden_rdtsc, . - hidden_rdtsc\n"
        ".globl hidden_rdtscp\n"
        ".type hidden_rdtscp, @function\n"
        "hidden_rdtscp:\n"
        "    mov $0xc3f9010f, %eax\n" /* b8 0f 01 f9 c3 */
        "    ret\n"
        ".size hidden_rdtscp, . - hidden_rdtscp\n"
        ".globl hidden_cpuid\n"
        ".type hidden_cpuid, @function\n"
        "hidden_cpuid:\n"
        "    mov $0x90c3a20f, %eax\n" /* b8 0f a2 c3 90 */
        "    ret\n"
        ".size hidden_cpuid, . - hidden_cpuid\n");

/* Calls `target` with eax = ecx = 0 (cpuid leaf 0) and returns edx:eax. */
static uint64_t call_hidden(uintptr_t target)
{
    register uint64_t rax __asm__("rax") = 0;
    register uint64_t rcx __asm__("rcx") = 0;
    register uint64_t rdx __asm__("rdx") = 0;
    /* Step over the red zone: the call pushes a return address. */
    __asm__ volatile("sub $128, %%rsp\n\t"
                     "call *%[t]\n\t"
                     "add $128, %%rsp"
                     : "+r"(rax), "+r"(rcx), "+r"(rdx)
                     : [t] "r"(target)
                     : "rbx", "rsi", "rdi", "r8", "r9", "r10", "r11", "memory", "cc");
    return rdx << 32 | (uint32_t)rax;
}

int main(int argc, char **argv)
{
    uintptr_t target;
    if (argc > 1 && !strcmp(argv[1], "rdtsc")) {
        target = (uintptr_t)&hidden_rdtsc;
    } else if (argc > 1 && !strcmp(argv[1], "rdtscp")) {
        target = (uintptr_t)&hidden_rdtscp;
    } else if (argc > 1 && !strcmp(argv[1], "cpuid")) {
        target = (uintptr_t)&hidden_cpuid;
    } else {
        zvm_puts(2, "usage: esc_hidden_time rdtsc|rdtscp|cpuid\n");
        return 2;
    }
    zvm_puts(1, "started=1\n");
    uint64_t value = call_hidden(target + 1);
    zvm_puts(1, "value=");
    zvm_put_int(1, (int64_t)value);
    zvm_puts(1, "\nreached=1\n");
    return 0;
}
