/*
 * zvmlib.c - the freestanding helpers zvm-gcc links into every guest.
 *
 * - __zvm_start: the C half of _start (crt/start.S).
 * - memcpy, memmove, memset, memcmp, strlen, strcmp, strncmp, strchr: gcc
 *   emits calls to the first four even with -ffreestanding (struct copies,
 *   large initialisers), and guests expect the rest.
 * - the conveniences declared in zvm.h, built only on the six calls.
 *
 * Plain byte loops: guests are small and this code must be obviously right.
 * zvm-gcc compiles this file with -fno-builtin and
 * -fno-tree-loop-distribute-patterns; without them gcc would turn memset's
 * loop into a call to memset. No global constructors and no TLS: the guest
 * has neither .init_array processing nor an fs: segment.
 */
#include "zvm.h"

/* envp as _start found it, for zvm_getenv. */
static char **zvm_envp;

/* Bytes of the heap zvm_sbrk has handed out. */
static uint64_t zvm_heap_used;

int main(int argc, char **argv, char **envp);
void __zvm_start(int argc, char **argv, char **envp) __attribute__((noreturn, used));

void __zvm_start(int argc, char **argv, char **envp)
{
    zvm_envp = envp;
    zvm_exit(main(argc, argv, envp));
}

void *memcpy(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    while (n--)
        *d++ = *s++;
    return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    if ((uintptr_t)d - (uintptr_t)s >= n) {
        /* dst is below src or the ranges do not overlap: copy forwards. */
        while (n--)
            *d++ = *s++;
    } else {
        /* dst overlaps the tail of src: copy backwards. */
        while (n--)
            d[n] = s[n];
    }
    return dst;
}

void *memset(void *dst, int c, size_t n)
{
    unsigned char *d = dst;
    while (n--)
        *d++ = (unsigned char)c;
    return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    for (; n; n--, x++, y++)
        if (*x != *y)
            return *x - *y;
    return 0;
}

size_t strlen(const char *s)
{
    const char *p = s;
    while (*p)
        p++;
    return (size_t)(p - s);
}

int strcmp(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return (unsigned char)*a - (unsigned char)*b;
}

int strncmp(const char *a, const char *b, size_t n)
{
    for (; n; n--, a++, b++) {
        if (*a != *b)
            return (unsigned char)*a - (unsigned char)*b;
        if (!*a)
            break;
    }
    return 0;
}

char *strchr(const char *s, int c)
{
    for (;; s++) {
        if (*s == (char)c)
            return (char *)s;
        if (!*s)
            return NULL;
    }
}

int64_t zvm_write_all(int desc, const void *buf, int64_t size)
{
    const char *p = buf;
    int64_t done = 0;

    /* Let the call report a negative size (-EFAULT) exactly as it would. */
    if (size < 0)
        return zvm_pwrite(desc, buf, size, 0);
    /* Offset 0: meant for sequential channels, which ignore it. */
    while (done < size) {
        int64_t n = zvm_pwrite(desc, p + done, size - done, 0);
        if (n < 0)
            return n;
        if (n == 0)
            break; /* no progress: report the short total, do not spin */
        done += n;
    }
    return done;
}

int64_t zvm_puts(int desc, const char *s)
{
    return zvm_write_all(desc, s, (int64_t)strlen(s));
}

int64_t zvm_put_int(int desc, int64_t v)
{
    char buf[24];
    char *p = buf + sizeof buf;
    /* Negate in unsigned arithmetic so INT64_MIN works. */
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    return zvm_write_all(desc, p, buf + sizeof buf - p);
}

void zvm_say_failed(const char *who, const char *what, const char *name, int64_t err)
{
    zvm_puts(2, who);
    zvm_puts(2, ": ");
    zvm_puts(2, what);
    zvm_puts(2, name);
    zvm_puts(2, " failed (error ");
    zvm_put_int(2, err);
    zvm_puts(2, ")\n");
}

int zvm_channel(const char *alias)
{
    for (int64_t i = 0; i < MANIFEST->channels_count; i++) {
        const char *name = MANIFEST->channels[i].name;
        if (name && strcmp(name, alias) == 0)
            return (int)i;
    }
    return -1;
}

int zvm_channel_next(const char *prefix, int after)
{
    size_t n = strlen(prefix);
    for (int64_t i = after < 0 ? 0 : (int64_t)after + 1; i < MANIFEST->channels_count; i++) {
        const char *name = MANIFEST->channels[i].name;
        if (name && strncmp(name, prefix, n) == 0)
            return (int)i;
    }
    return -1;
}

const char *zvm_getenv(const char *name)
{
    size_t len = strlen(name);
    if (!zvm_envp)
        return NULL;
    for (char **e = zvm_envp; *e; e++)
        if (strncmp(*e, name, len) == 0 && (*e)[len] == '=')
            return *e + len + 1;
    return NULL;
}

void *zvm_sbrk(int64_t increment)
{
    uint64_t size = MANIFEST->heap_size;
    char *old = (char *)MANIFEST->heap_ptr + zvm_heap_used;

    /* Stay within [heap_ptr, heap_ptr + heap_size]; compare without overflow. */
    if (increment > 0 && (uint64_t)increment > size - zvm_heap_used)
        return (void *)-1;
    if (increment < 0 && 0 - (uint64_t)increment > zvm_heap_used)
        return (void *)-1;
    zvm_heap_used += (uint64_t)increment; /* wraps correctly for increment < 0 */
    return old;
}

int64_t zvm_parse_u64(const char *s)
{
    int64_t v = 0;
    if (!s || !*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (INT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (*s - '0');
    }
    return v;
}
