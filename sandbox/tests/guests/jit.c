/*
 * jit.c - zvm_jail / zvm_unjail: run code generated on the heap.
 *
 * Takes two 64 KiB-aligned heap regions A and B (via zvm_sbrk), each filled
 * with 0x90 (nop) so the whole region decodes, and prints to /dev/stdout:
 *   jail=0        A holds `mov eax, 42; ret`, jailed (now r-x)
 *   jit=42        ... and called
 *   unjail=0      A made writable again (and no longer executable)
 *   rejail=0      A rewritten with `mov eax, 7; ret`, jailed again
 *   rejit=7       ... and called
 *   jail_syscall=-1      B holds `syscall; ret`: validation fails, -EPERM
 *   failed_jail_rw=ok    B is still writable after the failed jail
 *   jail_misaligned=-22  B + 4096 (not 64 KiB aligned): -EINVAL
 *   jail_badsize=-22     B with size 4096 (not a multiple of 64 KiB): -EINVAL
 *   jail_nonheap=-22     0x400000, the guest image (aligned, not heap): -EINVAL
 *   done=1
 * Writing into a jailed region is not tried here (that would be a kill, see
 * the esc_* guests). Exit code: 0 after done=1; 1 if a jail that must succeed
 * failed (its line shows the result and nothing is called); 2 if the heap is
 * too small for the two regions (jit=no_heap).
 */
#include <zvm.h>

#define REGION ZVM_JAIL_ALIGN /* 64 KiB: both the alignment and the size */

static const unsigned char ret42[] = {0xb8, 0x2a, 0x00, 0x00, 0x00, 0xc3}; /* mov $42,%eax; ret */
static const unsigned char ret7[] = {0xb8, 0x07, 0x00, 0x00, 0x00, 0xc3};  /* mov $7,%eax; ret */
static const unsigned char sys[] = {0x0f, 0x05, 0xc3};                     /* syscall; ret */

static void put_kv(const char *key, int64_t v)
{
    zvm_puts(1, key);
    zvm_puts(1, "=");
    zvm_put_int(1, v);
    zvm_puts(1, "\n");
}

/* Fill a region with nops, then put `code` at its start. */
static void load(unsigned char *region, const unsigned char *code, size_t n)
{
    memset(region, 0x90, REGION);
    memcpy(region, code, n);
}

/* Call the code at the start of a jailed region. */
static int call_region(unsigned char *region)
{
    int (*volatile fn)(void) = (int (*)(void))(uintptr_t)region;
    return fn();
}

int main(void)
{
    /* Two aligned regions from the heap: pad the break to 64 KiB first. */
    uintptr_t brk = (uintptr_t)zvm_sbrk(0);
    uintptr_t pad = (REGION - brk % REGION) % REGION;
    if (zvm_sbrk((int64_t)(pad + 2 * REGION)) == (void *)-1) {
        zvm_puts(1, "jit=no_heap\n");
        return 2;
    }
    unsigned char *a = (unsigned char *)(brk + pad);
    unsigned char *b = a + REGION;
    int64_t r;

    load(a, ret42, sizeof ret42);
    put_kv("jail", r = zvm_jail(a, REGION));
    if (r != 0)
        return 1;
    put_kv("jit", call_region(a));

    put_kv("unjail", r = zvm_unjail(a, REGION));
    if (r != 0)
        return 1;
    load(a, ret7, sizeof ret7);
    put_kv("rejail", r = zvm_jail(a, REGION));
    if (r != 0)
        return 1;
    put_kv("rejit", call_region(a));

    load(b, sys, sizeof sys);
    put_kv("jail_syscall", zvm_jail(b, REGION));
    ((volatile unsigned char *)b)[0] = 0x90; /* faults if B was left read-only */
    zvm_puts(1, "failed_jail_rw=ok\n");

    put_kv("jail_misaligned", zvm_jail(b + 4096, REGION));
    put_kv("jail_badsize", zvm_jail(b, 4096));
    put_kv("jail_nonheap", zvm_jail((void *)0x400000, REGION));
    put_kv("done", 1);
    return 0;
}
