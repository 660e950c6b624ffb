/*
 * __set_thread_area.c - set the thread pointer (replaces
 * src/thread/x86_64/__set_thread_area.s, which issued arch_prctl itself).
 * The runtime forwards ARCH_SET_FS to the trampoline's TLS gate.
 */
#include "pthread_impl.h"
#include "syscall.h"

int __set_thread_area(void *p)
{
	return __syscall(SYS_arch_prctl, 0x1002 /* ARCH_SET_FS */, p);
}
