/*
 * gadget.h - the trampoline's own `syscall` instruction, for escape tests.
 *
 * The seccomp filter trusts system calls that come from the trampoline page.
 * These helpers find the bytes 0f 05 in that page and call them with the
 * system call registers set, skipping the gates' argument checks, so a test
 * can show that the filter (not the gates) refuses what it must.
 */
#ifndef ZEROLAB_TEST_GADGET_H
#define ZEROLAB_TEST_GADGET_H

#include <zvm.h>

/* Offset of the first 0f 05 in the trampoline page, or -1. */
static int64_t find_syscall(void)
{
    const volatile unsigned char *page = (const volatile unsigned char *)ZVM_TRAMPOLINE;
    for (int64_t i = 0; i + 1 < 4096; i++)
        if (page[i] == 0x0f && page[i + 1] == 0x05)
            return i;
    return -1;
}

/* Jump to `target` with the system call registers set; it returns in rax. */
static long call_gadget(uintptr_t target, long nr, long a1, long a2, long a3, long a4)
{
    register long rax __asm__("rax") = nr;
    register long rdi __asm__("rdi") = a1;
    register long rsi __asm__("rsi") = a2;
    register long rdx __asm__("rdx") = a3;
    register long r10 __asm__("r10") = a4;
    /* Step over the red zone: the call pushes a return address. */
    __asm__ volatile("sub $128, %%rsp\n\t"
                     "call *%[t]\n\t"
                     "add $128, %%rsp"
                     : "+r"(rax), "+r"(rdi), "+r"(rsi), "+r"(rdx), "+r"(r10)
                     : [t] "r"(target)
                     : "rcx", "r8", "r9", "r11", "memory", "cc");
    return rax;
}

#endif
