/*
 * memchr.c - memchr with SSE2 (installed as src/string/x86_64/memchr.c of
 * Debian's musl source, replacing the word-at-a-time src/string/memchr.c;
 * see ../build-libc). It is what printf's "%s" runs on (through strnlen).
 * Loads are sixteen bytes aligned to sixteen, so none crosses a page: bytes
 * before src in the first load and past src+n in the last are in the same
 * page as bytes of the range, and matches there are masked off.
 *
 * musl builds with -nostdinc, so there is no <emmintrin.h>: vectors are
 * GCC's vector types, and the byte mask is its pmovmskb builtin.
 */
#include <stdint.h>
#include <string.h>

typedef char v16 __attribute__((__vector_size__(16)));
typedef char v16a __attribute__((__vector_size__(16), __may_alias__));
#define MASK(v) ((unsigned)__builtin_ia32_pmovmskb128(v))

void *memchr(const void *src, int c, size_t n)
{
	if (!n)
		return 0;
	const unsigned char *s = src;
	const v16 k = (v16){ 0 } + (char)c;
	const unsigned char *a = (const unsigned char *)((uintptr_t)s & ~(uintptr_t)15);
	size_t skip = s - a;
	unsigned m = MASK(*(const v16a *)a == k) >> skip;
	/* bytes of the range in the current load; bit 0 of m is s[0] */
	size_t have = 16 - skip;
	for (;;) {
		if (m) {
			size_t i = __builtin_ctz(m);
			return i < n ? (void *)(s + i) : 0;
		}
		if (have >= n)
			return 0;
		n -= have;
		s += have;
		a += 16;
		skip = 0;
		have = 16;
		m = MASK(*(const v16a *)a == k);
	}
}
