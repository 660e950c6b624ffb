/*
 * syscall_arch.h - musl's system-call layer for zerolab guests (replaces
 * arch/x86_64/syscall_arch.h of Debian's musl source; see ../build-libc).
 *
 * A zerolab guest has no `syscall` instruction outside the trampoline page:
 * every system call musl makes becomes a plain function call into the
 * in-guest runtime, __zrt_syscall (../zrt/), which implements it on top of
 * the six calls of zvm.h or answers a negated errno. The signature and the
 * return convention (a result or -errno) are the kernel's, so musl's wrappers
 * work unchanged. No vDSO either: VDSO_USEFUL is not defined, so
 * clock_gettime asks the runtime (which has the guest's fixed clock).
 */
#define __SYSCALL_LL_E(x) (x)
#define __SYSCALL_LL_O(x) (x)

hidden long __zrt_syscall(long n, long a1, long a2, long a3, long a4, long a5, long a6);

static __inline long __syscall0(long n)
{
	return __zrt_syscall(n, 0, 0, 0, 0, 0, 0);
}

static __inline long __syscall1(long n, long a1)
{
	return __zrt_syscall(n, a1, 0, 0, 0, 0, 0);
}

static __inline long __syscall2(long n, long a1, long a2)
{
	return __zrt_syscall(n, a1, a2, 0, 0, 0, 0);
}

static __inline long __syscall3(long n, long a1, long a2, long a3)
{
	return __zrt_syscall(n, a1, a2, a3, 0, 0, 0);
}

static __inline long __syscall4(long n, long a1, long a2, long a3, long a4)
{
	return __zrt_syscall(n, a1, a2, a3, a4, 0, 0);
}

static __inline long __syscall5(long n, long a1, long a2, long a3, long a4, long a5)
{
	return __zrt_syscall(n, a1, a2, a3, a4, a5, 0);
}

static __inline long __syscall6(long n, long a1, long a2, long a3, long a4, long a5, long a6)
{
	return __zrt_syscall(n, a1, a2, a3, a4, a5, a6);
}

#define IPC_64 0
