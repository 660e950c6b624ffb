/*
 * mem.c - anonymous memory from the preallocated heap.
 *
 * The jail maps the guest's whole heap before it starts (`Memory` in the
 * manifest) and the guest may not map anything itself, so mmap, munmap,
 * mremap and brk hand out and take back pages of that heap. One bitmap says
 * which pages are in use; a second says which have ever been handed out
 * (those are zeroed when handed out again: fresh anonymous memory reads as
 * zero, and the heap cannot be given back to the kernel). brk grows from the
 * bottom of the heap, mmap takes the highest free run, so the two meet only
 * when the heap is full. Only anonymous, non-executable mappings: a file
 * mapping is ENODEV, PROT_EXEC is EACCES (code must go through zvm_jail).
 */
#include <string.h>
#include <errno.h>
#include <sys/mman.h>
#include "zrt.h"

#define MAX_PAGES (1UL << 20) /* the 4 GiB heap ceiling, in pages */
#define WORDS (MAX_PAGES / 64)

static uint64_t used[WORDS];
static uint64_t dirty[WORDS];
static uintptr_t base;     /* heap start */
static size_t npages;      /* heap pages */
static uintptr_t brk_cur;  /* the program break */
static size_t brk_pages;   /* pages from base that belong to brk */

static void init(void)
{
    if (base)
        return;
    base = (uintptr_t)MANIFEST->heap_ptr;
    npages = MANIFEST->heap_size / ZRT_PAGE;
    if (npages > MAX_PAGES)
        npages = MAX_PAGES;
    brk_cur = base;
}

static int is_used(size_t p) { return (used[p / 64] >> (p % 64)) & 1; }

/* Marks [p, p+n) used and zeroes the pages handed out before. */
static void take(size_t p, size_t n)
{
    for (size_t i = p; i < p + n; i++) {
        uint64_t bit = 1ULL << (i % 64);
        used[i / 64] |= bit;
        if (dirty[i / 64] & bit)
            memset((void *)(base + i * ZRT_PAGE), 0, ZRT_PAGE);
        dirty[i / 64] |= bit;
    }
}

static void give(size_t p, size_t n)
{
    for (size_t i = p; i < p + n; i++)
        used[i / 64] &= ~(1ULL << (i % 64));
}

/* The highest run of n free pages at or above `floor`, or -1. */
static long find_free(size_t n, size_t floor)
{
    size_t run = 0;
    for (size_t i = npages; i-- > floor;) {
        if (i % 64 == 63 && used[i / 64] == ~0ULL) {
            run = 0;
            i -= 63;
            continue;
        }
        if (is_used(i)) {
            run = 0;
            continue;
        }
        if (++run == n)
            return (long)i;
    }
    return -1;
}

static int in_heap(uintptr_t addr, size_t len)
{
    return addr >= base && len <= npages * ZRT_PAGE && addr - base <= npages * ZRT_PAGE - len;
}

long zrt_mmap(uintptr_t addr, size_t len, int prot, int flags, int fd, off_t off)
{
    init();
    (void)fd;
    if (!len || (off & (ZRT_PAGE - 1)))
        return -EINVAL;
    if (!(flags & MAP_ANONYMOUS))
        return -ENODEV;
    if (prot & PROT_EXEC)
        return -EACCES;
    if (len > npages * ZRT_PAGE)
        return -ENOMEM;
    size_t n = (len + ZRT_PAGE - 1) / ZRT_PAGE;
    if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
        if ((addr & (ZRT_PAGE - 1)) || !in_heap(addr, n * ZRT_PAGE))
            return -ENOMEM;
        size_t p = (addr - base) / ZRT_PAGE;
        for (size_t i = p; i < p + n; i++) {
            if (!is_used(i))
                continue;
            if (flags & MAP_FIXED_NOREPLACE)
                return -EEXIST;
            dirty[i / 64] |= 1ULL << (i % 64); /* replaced: zero it below */
        }
        give(p, n);
        take(p, n);
        return (long)addr;
    }
    long p = find_free(n, brk_pages);
    if (p < 0)
        return -ENOMEM;
    take((size_t)p, n);
    return (long)(base + (size_t)p * ZRT_PAGE);
}

long zrt_munmap(uintptr_t addr, size_t len)
{
    init();
    if ((addr & (ZRT_PAGE - 1)) || !len)
        return -EINVAL;
    size_t n = (len + ZRT_PAGE - 1) / ZRT_PAGE;
    if (!in_heap(addr, n * ZRT_PAGE))
        return -EINVAL;
    give((addr - base) / ZRT_PAGE, n);
    return 0;
}

long zrt_mremap(uintptr_t old, size_t old_len, size_t new_len, int flags)
{
    init();
    if ((old & (ZRT_PAGE - 1)) || !new_len)
        return -EINVAL;
    size_t on = (old_len + ZRT_PAGE - 1) / ZRT_PAGE, nn = (new_len + ZRT_PAGE - 1) / ZRT_PAGE;
    if (!on || !in_heap(old, on * ZRT_PAGE) || nn > npages)
        return -EINVAL;
    size_t p = (old - base) / ZRT_PAGE;
    if (nn <= on) {
        give(p + nn, on - nn);
        return (long)old;
    }
    /* Grow in place when the pages after it are free. */
    size_t i = p + on;
    while (i < p + nn && i < npages && !is_used(i))
        i++;
    if (i == p + nn) {
        take(p + on, nn - on);
        return (long)old;
    }
    if (!(flags & MREMAP_MAYMOVE))
        return -ENOMEM;
    long q = find_free(nn, brk_pages);
    if (q < 0)
        return -ENOMEM;
    take((size_t)q, nn);
    uintptr_t to = base + (size_t)q * ZRT_PAGE;
    memcpy((void *)to, (void *)old, on * ZRT_PAGE);
    give(p, on);
    return (long)to;
}

long zrt_brk(uintptr_t addr)
{
    init();
    if (addr <= base || addr - base > npages * ZRT_PAGE)
        return (long)brk_cur;
    size_t want = (addr - base + ZRT_PAGE - 1) / ZRT_PAGE;
    if (want > brk_pages) {
        for (size_t i = brk_pages; i < want; i++)
            if (is_used(i))
                return (long)brk_cur; /* an mmap sits there: brk cannot grow */
        take(brk_pages, want - brk_pages);
    } else {
        give(want, brk_pages - want);
    }
    brk_pages = want;
    brk_cur = addr;
    return (long)brk_cur;
}

long zrt_mprotect(uintptr_t addr, size_t len, int prot)
{
    init();
    if (addr & (ZRT_PAGE - 1))
        return -EINVAL;
    if (prot & PROT_EXEC)
        return -EACCES;
    /* The heap stays read-write: narrowing it is not enforced, which only
     * weakens a guest's own checks, never the jail. */
    return in_heap(addr, len) ? 0 : -ENOMEM;
}

void *zrt_pages(size_t len)
{
    long r = zrt_mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return r < 0 ? NULL : (void *)r;
}

void zrt_pages_free(void *p, size_t len)
{
    zrt_munmap((uintptr_t)p, len);
}
