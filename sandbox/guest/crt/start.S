/*
 * start.S - a guest's first instruction.
 *
 * The runtime enters _start with rsp 16-byte aligned and pointing at the
 * SysV initial stack: argc, argv[0..argc-1], NULL, envp..., NULL (no auxv).
 * We hand argc/argv/envp to __zvm_start (crt/zvmlib.c), which records envp
 * for zvm_getenv, calls main and passes its result to zvm_exit. Keeping the
 * gate address out of this file leaves zvm.h the one place it is written.
 */
    .text
    .globl _start
    .type _start, @function
_start:
    xor %ebp, %ebp              /* outermost frame: ends frame-pointer walks */
    mov (%rsp), %rdi            /* argc */
    lea 8(%rsp), %rsi           /* argv */
    lea 16(%rsp,%rdi,8), %rdx   /* envp: just past argv's NULL */
    and $-16, %rsp              /* aligned already; the call needs it */
    call __zvm_start            /* does not return */
    ud2                         /* if it ever did: fault, do not run on */
    .size _start, . - _start

    /* No executable stack (and no linker warning about it). */
    .section .note.GNU-stack, "", @progbits
