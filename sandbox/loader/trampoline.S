/*
 * trampoline.S - the one page of trusted code a guest may call into.
 *
 * The seccomp filter lets system calls through only when the instruction
 * pointer is inside this page, so everything here is deliberately small:
 * six gates at fixed offsets (zvm.h), a seventh that sets the thread
 * pointer for a libc (zvm_set_fs), each checking its arguments against the
 * read-only manifest area before issuing one system call, and zl_enter, the
 * loader's last step. A guest can jump to any byte of this page; the filter,
 * not these checks, is the boundary: the checks only give honest guests
 * ZeroVM's error codes.
 *
 * Manifest area (ZL_MANIFEST_ADDR): +24 channels_count (int64), +64 the gate
 * table: per channel { int32 fd; uint32 flags } (flags in src/abi.rs).
 */
#define MANIFEST 0x20000
#define COUNT (MANIFEST + 24)
#define GATES (MANIFEST + 64)
#define F_READ 1
#define F_WRITE 2
#define F_RGET 4
#define F_RPUT 8
#define EFAULT 14
#define EINVAL 22
#define ENOSYS 38
#define SYS_read 0
#define SYS_write 1
#define SYS_close 3
#define SYS_mprotect 10
#define SYS_munmap 11
#define SYS_pread64 17
#define SYS_pwrite64 18
#define SYS_sendmsg 46
#define SYS_fork 57
#define SYS_arch_prctl 158
#define SYS_exit_group 231
#define ARCH_SET_FS 0x1002

    .section .trampoline, "ax"
    .globl zl_trampoline
zl_trampoline:

/* int64_t zvm_pread(int desc, void *buf, int64_t size, int64_t offset) */
    .org 0x00
    mov $F_READ, %r8d
    mov $(F_RGET << 8 | SYS_pread64), %r9d
    jmp io_gate

/* int64_t zvm_pwrite(int desc, const void *buf, int64_t size, int64_t offset) */
    .org 0x20
    mov $F_WRITE, %r8d
    mov $(F_RPUT << 8 | SYS_pwrite64), %r9d
    jmp io_gate

/* int64_t zvm_jail(void *addr, int64_t size): PROT_READ|PROT_EXEC; the
 * supervisor validates the region before the kernel applies it. */
    .org 0x40
    mov $5, %edx
    mov $SYS_mprotect, %eax
    syscall
    ret

/* int64_t zvm_unjail(void *addr, int64_t size): PROT_READ|PROT_WRITE. */
    .org 0x60
    mov $3, %edx
    mov $SYS_mprotect, %eax
    syscall
    ret

/* int64_t zvm_fork(void): daemon mode (fork_gate below). */
    .org 0x80
    jmp fork_gate

/* void zvm_exit(int64_t code) */
    .org 0xA0
    mov $SYS_exit_group, %eax
    syscall
    ud2

/* Shared body of pread/pwrite.
 * in: edi desc, rsi buf, rdx size, rcx offset, r8d direction flag,
 *     r9d = random-flag << 8 | random syscall number. */
    .org 0xC0
io_gate:
    movslq %edi, %rdi
    cmp COUNT, %rdi            /* unsigned: negative descs are huge */
    jae 1f
    test %rdx, %rdx
    js 2f                      /* negative size: -EFAULT */
    jz 3f                      /* size 0: 0 */
    test %rcx, %rcx
    js 1f                      /* negative offset: -EINVAL */
    mov GATES+4(,%rdi,8), %eax /* flags */
    test %r8d, %eax
    jz 1f                      /* wrong direction: -EINVAL */
    mov GATES(,%rdi,8), %edi   /* kernel fd */
    mov %rcx, %r10
    mov %r9d, %ecx
    shr $8, %ecx
    test %ecx, %eax
    jz 4f
    movzbl %r9b, %eax          /* random: pread64/pwrite64 */
    jmp 5f
4:  mov %r8d, %eax             /* sequential: read (0) for F_READ, write (1) for F_WRITE */
    shr $1, %eax
5:  syscall
    cmp $-EFAULT, %rax         /* a buffer the guest may not access: -EINVAL */
    jne 6f
1:  mov $-EINVAL, %rax
6:  ret
2:  mov $-EFAULT, %rax
    ret
3:  xor %eax, %eax
    ret

/* int64_t zvm_set_fs(void *base): arch_prctl(ARCH_SET_FS, base), the one
 * call a libc's start-up needs to reach its thread-local storage. The filter
 * allows arch_prctl only with ARCH_SET_FS as its first argument. */
    .org 0x1E0
    mov %rdi, %rsi
    mov $ARCH_SET_FS, %edi
    mov $SYS_arch_prctl, %eax
    syscall
    ret

/* zl_enter(struct msghdr *hello, int sock, void *entry, void *sp, int listener):
 * the loader's last step, run after the seccomp filter is installed. Sends
 * the listener fd to the supervisor, closes the socket and the listener,
 * switches to the guest stack, unmaps the loader and jumps to the guest with
 * clean registers. */
    .org 0x200
    .globl zl_enter
zl_enter:
    mov %rdx, %r12
    mov %rcx, %r13
    mov %esi, %r14d
    mov %r8d, %r15d
    mov %rdi, %rsi
    mov %r14d, %edi
    xor %edx, %edx
    mov $SYS_sendmsg, %eax
    syscall
    test %rax, %rax
    js 9f
    mov %r14d, %edi
    mov $SYS_close, %eax
    syscall
    mov %r15d, %edi
    mov $SYS_close, %eax
    syscall
    mov %r13, %rsp
    movabs $0x10000000000, %rdi
    mov $0x100000, %esi
    mov $SYS_munmap, %eax
    syscall
    test %rax, %rax
    jnz 9f
    push %r12
    xor %eax, %eax
    xor %ebx, %ebx
    xor %ecx, %ecx
    xor %edx, %edx
    xor %esi, %esi
    xor %edi, %edi
    xor %ebp, %ebp
    xor %r8d, %r8d
    xor %r9d, %r9d
    xor %r10d, %r10d
    xor %r11d, %r11d
    xor %r12d, %r12d
    xor %r13d, %r13d
    xor %r14d, %r14d
    xor %r15d, %r15d
    cld
    ret
    /* Failure: die by a fault, not a system call. exit_group would be
     * handed to a supervisor that never received the listener. */
9:  ud2

/* zvm_fork's body. Saves what a copy needs to return from this call as the
 * guest that made it (the callee-saved registers, MXCSR and the x87 control
 * word, the thread pointer) on the guest's own stack, then asks with
 * fork(rsp), a call the filter never allows: the supervisor of a daemon
 * (`Job`) takes the guest's memory as the template of its copies and ends
 * the daemon; any other supervisor answers -ENOSYS, and the call returns
 * that. Frame at rsp: +0 MXCSR, +4 x87 control word, +8 FS base, +16 r15,
 * r14, r13, r12, rbp, rbx, then the return address. */
    .org 0x300
fork_gate:
    push %rbx
    push %rbp
    push %r12
    push %r13
    push %r14
    push %r15
    sub $16, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    rdfsbase %rax
    mov %rax, 8(%rsp)
    mov %rsp, %rdi
    mov $SYS_fork, %eax
    syscall
    add $16, %rsp
    jmp fork_return

/* A copy starts here (the layout's entry, from zl_enter) on the stack
 * fork_gate left, in the daemon's memory: restores the thread pointer and
 * the saved state, and zvm_fork returns 0 in the copy. */
    .org 0x380
    .globl zl_fork_resume
zl_fork_resume:
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    mov 8(%rsp), %rsi
    mov $ARCH_SET_FS, %edi
    mov $SYS_arch_prctl, %eax
    syscall
    add $16, %rsp
    xor %eax, %eax
fork_return:
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbp
    pop %rbx
    ret

    .org 0x1000
