/*
 * syscall_cp.s - musl's cancellable system call for zerolab guests (replaces
 * src/thread/x86_64/syscall_cp.s): the same cancellation check and labels,
 * then a call into the runtime instead of a `syscall` instruction.
 * __syscall_cp_asm(int *cancel, nr, u, v, w, x, y, z) ->
 * __zrt_syscall(nr, u, v, w, x, y, z).
 */
.text
.global __cp_begin
.hidden __cp_begin
.global __cp_end
.hidden __cp_end
.global __cp_cancel
.hidden __cp_cancel
.hidden __cancel
.hidden __zrt_syscall
.global __syscall_cp_asm
.hidden __syscall_cp_asm
.type   __syscall_cp_asm,@function
__syscall_cp_asm:

__cp_begin:
	mov (%rdi),%eax
	test %eax,%eax
	jnz __cp_cancel
	mov %rsi,%rdi
	mov %rdx,%rsi
	mov %rcx,%rdx
	mov %r8,%rcx
	mov %r9,%r8
	mov 8(%rsp),%r9
	mov 16(%rsp),%rax
	push %rax
	call __zrt_syscall
__cp_end:
	add $8,%rsp
	ret
__cp_cancel:
	jmp __cancel
