/*
 * qsort.c - qsort and qsort_r as a merge sort (replaces src/stdlib/qsort.c
 * and src/stdlib/qsort_nr.c of Debian's musl source; see ../build-libc).
 *
 * musl's own qsort is a smoothsort: in place, but it makes about twice the
 * comparisons of a merge sort and jumps about the array, which is what made
 * busybox sort of 100 MB 2.8x slower than with glibc. This is the scheme of
 * glibc's qsort (msort.c): a top-down merge sort through a scratch buffer of
 * the array's size (on the stack up to 1 KiB, else malloc'd), copying
 * elements a word at a time when their size and alignment allow; when the
 * buffer cannot be had, musl's smoothsort (renamed __qsort_smooth_r by
 * build-libc) sorts in place as before. Equal elements keep their order
 * (stable), which C does not require and does no harm.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef int (*cmpfun)(const void *, const void *);
typedef int (*cmpfun_r)(const void *, const void *, void *);

hidden void __qsort_smooth_r(void *, size_t, size_t, cmpfun_r, void *);

/* Element copies go through types that may alias whatever the caller
 * stored (as musl's word-at-a-time string functions do). */
typedef unsigned long __attribute__((__may_alias__)) word;
typedef uint32_t __attribute__((__may_alias__)) u32;

/* How elements are copied: whole words, 32-bit words, or bytes. */
enum copy { COPY_LONG, COPY_WORDS, COPY_U32, COPY_BYTES };

struct sort {
	size_t width;
	enum copy copy;
	cmpfun_r cmp_r; /* qsort_r's comparison, or 0 for qsort's */
	cmpfun cmp;
	void *arg;
	char *tmp;
};

static inline int compare(const struct sort *s, const void *a, const void *b)
{
	return s->cmp_r ? s->cmp_r(a, b, s->arg) : s->cmp(a, b);
}

static inline void copy_one(const struct sort *s, char *to, const char *from)
{
	switch (s->copy) {
	case COPY_LONG:
		*(word *)to = *(const word *)from;
		break;
	case COPY_WORDS:
		for (size_t i = 0; i < s->width; i += sizeof(word))
			*(word *)(to + i) = *(const word *)(from + i);
		break;
	case COPY_U32:
		for (size_t i = 0; i < s->width; i += 4)
			*(u32 *)(to + i) = *(const u32 *)(from + i);
		break;
	case COPY_BYTES:
		memcpy(to, from, s->width);
		break;
	}
}

/* Sorts the n elements at b, using s->tmp (room for n elements) as scratch. */
static void msort(const struct sort *s, char *b, size_t n)
{
	if (n <= 1)
		return;
	size_t n1 = n / 2, n2 = n - n1, w = s->width;
	char *b1 = b, *b2 = b + n1 * w, *t = s->tmp;
	msort(s, b1, n1);
	msort(s, b2, n2);
	/* Merge into tmp until one run is used up: the rest of the second run
	 * is already in place, the rest of the first goes after the merged part. */
	while (n1 && n2) {
		if (compare(s, b1, b2) <= 0) {
			copy_one(s, t, b1);
			b1 += w;
			n1--;
		} else {
			copy_one(s, t, b2);
			b2 += w;
			n2--;
		}
		t += w;
	}
	if (n1)
		memcpy(t, b1, n1 * w);
	memcpy(b, s->tmp, (n - n2) * w);
}

/* qsort's comparison through qsort_r's interface, for the in-place sort. */
static int call_plain(const void *a, const void *b, void *cmp)
{
	return ((cmpfun)cmp)(a, b);
}

static void sort(void *base, size_t nel, size_t width, cmpfun cmp, cmpfun_r cmp_r, void *arg)
{
	if (nel <= 1 || !width)
		return;
	struct sort s = { .width = width, .cmp = cmp, .cmp_r = cmp_r, .arg = arg };
	uintptr_t align = (uintptr_t)base;
	if (width == sizeof(word) && align % _Alignof(word) == 0)
		s.copy = COPY_LONG;
	else if (width % sizeof(word) == 0 && align % _Alignof(word) == 0)
		s.copy = COPY_WORDS;
	else if (width % 4 == 0 && align % 4 == 0)
		s.copy = COPY_U32;
	else
		s.copy = COPY_BYTES;
	char stack[1024] __attribute__((aligned(16)));
	void *heap = 0;
	if (nel <= sizeof stack / width) {
		s.tmp = stack;
	} else {
		if (nel > SIZE_MAX / width || !(heap = malloc(nel * width))) {
			/* No room for the scratch buffer: sort in place. */
			if (cmp_r)
				__qsort_smooth_r(base, nel, width, cmp_r, arg);
			else
				__qsort_smooth_r(base, nel, width, call_plain, (void *)cmp);
			return;
		}
		s.tmp = heap;
	}
	msort(&s, base, nel);
	free(heap);
}

void __qsort_r(void *base, size_t nel, size_t width, cmpfun_r cmp, void *arg)
{
	sort(base, nel, width, 0, cmp, arg);
}

weak_alias(__qsort_r, qsort_r);

void qsort(void *base, size_t nel, size_t width, cmpfun cmp)
{
	sort(base, nel, width, cmp, 0, 0);
}
