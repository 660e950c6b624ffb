/* The libc's own qsort and string functions (guest/posix/musl/: a merge sort,
 * SSE2 strcmp, memcmp, strlen, memchr) against plain byte-at-a-time
 * references. Built two ways: with zvm-cc, testing the libc guests link
 * (run in zvsh); and natively with -DNATIVE, which includes those source
 * files under zl_ names and adds strings that end at the last byte before an
 * inaccessible page (a read past the terminator into it would fault).
 * Prints each failure and, at the end, "libc: N checks, F failed". */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef NATIVE
#include <sys/mman.h>
#include <unistd.h>
#define strcmp zl_strcmp
#define memcmp zl_memcmp
#define strlen zl_strlen
#define memchr zl_memchr
#include "../../../guest/posix/musl/strcmp.c"
#include "../../../guest/posix/musl/memcmp.c"
#include "../../../guest/posix/musl/strlen.c"
#include "../../../guest/posix/musl/memchr.c"
#undef strcmp
#undef memcmp
#undef strlen
#undef memchr
#define STRCMP zl_strcmp
#define MEMCMP zl_memcmp
#define STRLEN zl_strlen
#define MEMCHR zl_memchr
#else
#define STRCMP strcmp
#define MEMCMP memcmp
#define STRLEN strlen
#define MEMCHR memchr
#endif

static long checks, failed;

#define CHECK(cond, ...)                                                                                        \
    do {                                                                                                         \
        checks++;                                                                                                \
        if (!(cond)) {                                                                                           \
            if (failed++ < 20) {                                                                                 \
                printf("FAIL %s:%d: ", __FILE__, __LINE__);                                                      \
                printf(__VA_ARGS__);                                                                             \
                printf("\n");                                                                                    \
            }                                                                                                    \
        }                                                                                                        \
    } while (0)

static int sign(int x) { return (x > 0) - (x < 0); }

static int ref_strcmp(const char *l, const char *r)
{
    for (; *l == *r && *l; l++, r++);
    return *(const unsigned char *)l - *(const unsigned char *)r;
}

static int ref_memcmp(const unsigned char *l, const unsigned char *r, size_t n)
{
    for (; n && *l == *r; n--, l++, r++);
    return n ? *l - *r : 0;
}

/* Every pair of alignments and every position of the first difference or of
 * the terminator, with bytes above 127 (the comparisons are unsigned). */
static void strings(void)
{
    static char a[160], b[160];
    for (int oa = 0; oa < 16; oa++)
        for (int ob = 0; ob < 16; ob++)
            for (int len = 0; len < 70; len += (len < 40 ? 1 : 7))
                for (int diff = -1; diff <= len; diff += (len < 20 ? 1 : 5)) {
                    char *x = a + oa, *y = b + ob;
                    memset(a, 'z', sizeof a);
                    memset(b, 'z', sizeof b);
                    for (int i = 0; i < len; i++)
                        x[i] = y[i] = (char)('a' + (i * 7 + oa) % 26);
                    x[len] = y[len] = 0;
                    if (diff >= 0)
                        y[diff] = (char)(diff % 2 ? 0xe9 : 1);
                    CHECK(sign(STRCMP(x, y)) == sign(ref_strcmp(x, y)), "strcmp oa=%d ob=%d len=%d diff=%d", oa,
                          ob, len, diff);
                    CHECK(sign(STRCMP(y, x)) == sign(ref_strcmp(y, x)), "strcmp reversed oa=%d ob=%d len=%d", oa,
                          ob, len);
                    CHECK(sign(MEMCMP(x, y, len)) == sign(ref_memcmp((void *)x, (void *)y, len)),
                          "memcmp oa=%d ob=%d len=%d diff=%d", oa, ob, len, diff);
                    CHECK(STRLEN(x) == (size_t)len, "strlen oa=%d len=%d", oa, len);
                    for (int n = 0; n <= len + 1 && ob == 0; n++) {
                        char *want = diff >= 0 && diff < n ? y + diff : 0;
                        int c = diff >= 0 ? (unsigned char)y[diff] : '#';
                        for (int k = 0; want && k < diff; k++)
                            if ((unsigned char)y[k] == c)
                                want = y + k;
                        CHECK(MEMCHR(y, c, n) == want, "memchr oa=%d len=%d n=%d diff=%d", oa, len, n, diff);
                    }
                }
    CHECK(STRCMP("", "") == 0, "empty strings");
    CHECK(STRCMP("\x80", "\x7f") > 0, "high bytes are greater");
    CHECK(MEMCMP("\xff", "\x00", 1) > 0, "memcmp high bytes are greater");
    CHECK(MEMCHR("abc", 'a' + 256, 3) == 0 || *(char *)MEMCHR("abc", 'a' + 256, 3) == 'a', "memchr takes c as a byte");
}

#ifdef NATIVE
/* Strings whose terminator is the last byte before a PROT_NONE page. */
static void page_ends(void)
{
    long page = sysconf(_SC_PAGESIZE);
    char *m = mmap(0, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED, "mmap");
    if (m == MAP_FAILED)
        return;
    mprotect(m + page, page, PROT_NONE);
    mprotect(m + 3 * page, page, PROT_NONE);
    char *end1 = m + page, *end2 = m + 3 * page;
    for (int la = 1; la < 48; la++)
        for (int lb = 1; lb < 48; lb++) {
            char *x = end1 - la, *y = end2 - lb;
            memset(x, 'q', la - 1);
            memset(y, 'q', lb - 1);
            x[la - 1] = y[lb - 1] = 0;
            CHECK(sign(STRCMP(x, y)) == sign(la - lb), "strcmp at page ends la=%d lb=%d", la, lb);
            CHECK(STRLEN(x) == (size_t)la - 1, "strlen at a page end la=%d", la);
            CHECK(MEMCMP(x, y, la < lb ? la : lb) == sign(la - lb) * ('q' - 0) * (la != lb),
                  "memcmp at page ends la=%d lb=%d", la, lb);
            CHECK(MEMCHR(x, 'x', la) == 0 && MEMCHR(x, 0, la) == x + la - 1, "memchr at a page end la=%d", la);
        }
    munmap(m, 4 * page);
}
#endif

#ifndef NATIVE
static uint64_t seed = 13;
static uint32_t rnd(void)
{
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(seed >> 33);
}

struct rec {
    uint32_t key, order;
};

static int by_key(const void *a, const void *b)
{
    uint32_t x = ((const struct rec *)a)->key, y = ((const struct rec *)b)->key;
    return (x > y) - (x < y);
}

static int by_key_r(const void *a, const void *b, void *calls)
{
    ++*(long *)calls;
    return by_key(a, b);
}

static int by_bytes(const void *a, const void *b) { return memcmp(a, b, 3); }

static int by_string(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int by_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Fills n records with keys of one pattern, sorts, checks order and stability. */
static void sort_pattern(const char *name, int pattern, size_t n, int with_r)
{
    struct rec *r = malloc(n * sizeof *r);
    for (size_t i = 0; i < n; i++) {
        uint32_t k = pattern == 0 ? rnd() : pattern == 1 ? (uint32_t)i : pattern == 2 ? (uint32_t)(n - i) : rnd() % 5;
        r[i] = (struct rec){ k, (uint32_t)i };
    }
    long calls = 0;
    if (with_r)
        qsort_r(r, n, sizeof *r, by_key_r, &calls);
    else
        qsort(r, n, sizeof *r, by_key);
    int ok = 1;
    for (size_t i = 1; i < n; i++)
        if (r[i - 1].key > r[i].key || (r[i - 1].key == r[i].key && r[i - 1].order > r[i].order))
            ok = 0;
    CHECK(ok, "qsort %s n=%zu r=%d", name, n, with_r);
    if (with_r && n > 1000)
        CHECK(calls < (long)(n * 21), "qsort_r %s n=%zu: %ld comparisons", name, n, calls);
    free(r);
}

static void sorts(void)
{
    const char *names[] = { "random", "sorted", "reversed", "five keys" };
    size_t sizes[] = { 0, 1, 2, 3, 7, 64, 129, 1000, 100000 };
    for (int p = 0; p < 4; p++)
        for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
            sort_pattern(names[p], p, sizes[s], 0);
            sort_pattern(names[p], p, sizes[s], 1);
        }
    /* Pointers to strings (busybox sort's case), 3-byte elements at an odd
     * address, 40-byte ones: each way of copying elements. */
    size_t n = 50000;
    char **lines = malloc(n * sizeof *lines);
    char *text = malloc(n * 16);
    for (size_t i = 0; i < n; i++) {
        lines[i] = text + i * 16;
        snprintf(lines[i], 16, "%u", rnd() % 100000);
    }
    qsort(lines, n, sizeof *lines, by_string);
    int ok = 1;
    for (size_t i = 1; i < n; i++)
        ok &= ref_strcmp(lines[i - 1], lines[i]) <= 0;
    CHECK(ok, "qsort of string pointers");
    free(text);
    free(lines);
    unsigned char *odd = malloc(3 * 5000 + 1);
    for (size_t i = 0; i < 3 * 5000; i++)
        odd[i + 1] = (unsigned char)rnd();
    qsort(odd + 1, 5000, 3, by_bytes);
    ok = 1;
    for (size_t i = 1; i < 5000; i++)
        ok &= memcmp(odd + 1 + 3 * (i - 1), odd + 1 + 3 * i, 3) <= 0;
    CHECK(ok, "qsort of 3-byte elements at an odd address");
    free(odd);
    struct wide {
        uint64_t key, pad[4];
    } *w = malloc(5000 * sizeof *w);
    for (size_t i = 0; i < 5000; i++)
        w[i] = (struct wide){ rnd(), { i, i, i, i } };
    qsort(w, 5000, sizeof *w, by_u64);
    ok = 1;
    for (size_t i = 1; i < 5000; i++)
        ok &= w[i - 1].key <= w[i].key && w[i].pad[0] == w[i].pad[3];
    CHECK(ok, "qsort of 40-byte elements");
    free(w);
}

/* With no memory left for the scratch buffer, qsort sorts in place. */
static void sort_without_memory(void)
{
    size_t n = 1 << 20;
    struct rec *r = malloc(n * sizeof *r);
    void *hog[4096];
    size_t held = 0;
    while (held < 4096 && (hog[held] = malloc(16 << 20)))
        held++;
    while (held < 4096 && (hog[held] = malloc(1 << 20)))
        held++;
    void *probe = malloc(n * sizeof *r);
    CHECK(r && held < 4096 && !probe, "the heap is full (held %zu blocks)", held);
    free(probe);
    if (r) {
        for (size_t i = 0; i < n; i++)
            r[i] = (struct rec){ rnd() % 1000, (uint32_t)i };
        qsort(r, n, sizeof *r, by_key);
        int ok = 1;
        for (size_t i = 1; i < n; i++)
            ok &= r[i - 1].key <= r[i].key;
        CHECK(ok, "qsort in place without a scratch buffer");
    }
    while (held)
        free(hog[--held]);
    free(r);
}
#endif

int main(void)
{
    strings();
#ifdef NATIVE
    page_ends();
#else
    sorts();
    sort_without_memory();
#endif
    printf("libc: %ld checks, %ld failed\n", checks, failed);
    return failed != 0;
}
