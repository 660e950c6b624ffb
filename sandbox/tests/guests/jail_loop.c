/*
 * jail_loop.c - ask the supervisor to validate the whole heap, forever.
 *
 * Jails and unjails the guest's entire preallocated heap (untouched, so all
 * zero bytes: `add [rax], al` again and again, valid code) in a loop. Each
 * zvm_jail makes the supervisor read and validate the whole region, up to
 * all of `Memory`. Prints "heap=BYTES" and "started=1" to /dev/stdout, then
 * loops until the session's Timeout kills it. Expect: killed for "session
 * timeout" within half a second of the Timeout, the supervisor's memory no
 * larger than for any other guest. "jail=R" and exit code 1 if a zvm_jail or
 * zvm_unjail fails (R its result); exit code 2 if the heap is too small.
 */
#include <zvm.h>

int main(void)
{
    void *heap = MANIFEST->heap_ptr;
    int64_t size = (int64_t)(MANIFEST->heap_size & ~(ZVM_JAIL_ALIGN - 1));
    zvm_puts(1, "heap=");
    zvm_put_int(1, size);
    zvm_puts(1, "\nstarted=1\n");
    if (size <= 0)
        return 2;
    for (;;) {
        int64_t r = zvm_jail(heap, size);
        if (r == 0)
            r = zvm_unjail(heap, size);
        if (r != 0) {
            zvm_puts(1, "jail=");
            zvm_put_int(1, r);
            zvm_puts(1, "\n");
            return 1;
        }
    }
}
