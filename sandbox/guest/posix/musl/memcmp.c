/*
 * memcmp.c - memcmp with SSE2 (installed as src/string/x86_64/memcmp.c of
 * Debian's musl source, replacing the byte-at-a-time src/string/memcmp.c;
 * see ../build-libc). Sixteen bytes at a time while sixteen remain, then
 * byte by byte: nothing outside the n bytes is read.
 *
 * musl builds with -nostdinc, so there is no <emmintrin.h>: vectors are
 * GCC's vector types, and the byte mask is its pmovmskb builtin.
 */
#include <string.h>

typedef char v16 __attribute__((__vector_size__(16)));
typedef char v16u __attribute__((__vector_size__(16), __aligned__(1), __may_alias__));
#define MASK(v) ((unsigned)__builtin_ia32_pmovmskb128(v))

int memcmp(const void *vl, const void *vr, size_t n)
{
	const unsigned char *l = vl, *r = vr;
	for (; n >= 16; n -= 16, l += 16, r += 16) {
		v16 a = *(const v16u *)l;
		v16 b = *(const v16u *)r;
		unsigned diff = MASK(a == b) ^ 0xffff;
		if (diff) {
			unsigned i = __builtin_ctz(diff);
			return l[i] - r[i];
		}
	}
	for (; n && *l == *r; n--, l++, r++);
	return n ? *l - *r : 0;
}
