/*
 * strlen.c - strlen with SSE2 (installed as src/string/x86_64/strlen.c of
 * Debian's musl source, replacing the word-at-a-time src/string/strlen.c;
 * see ../build-libc). Loads are sixteen bytes aligned to sixteen, so none
 * crosses a page: the bytes before the string in the first load and after
 * the terminator in the last are in the same page as the string's own, and
 * are masked off or ignored.
 *
 * musl builds with -nostdinc, so there is no <emmintrin.h>: vectors are
 * GCC's vector types, and the byte mask is its pmovmskb builtin.
 */
#include <stdint.h>
#include <string.h>

typedef char v16 __attribute__((__vector_size__(16)));
typedef char v16a __attribute__((__vector_size__(16), __may_alias__));
#define MASK(v) ((unsigned)__builtin_ia32_pmovmskb128(v))

size_t strlen(const char *s)
{
	const v16 zero = (v16){ 0 };
	const char *a = (const char *)((uintptr_t)s & ~(uintptr_t)15);
	unsigned z = MASK(*(const v16a *)a == zero);
	z >>= s - a;
	if (z)
		return __builtin_ctz(z);
	for (;;) {
		a += 16;
		z = MASK(*(const v16a *)a == zero);
		if (z)
			return a + __builtin_ctz(z) - s;
	}
}
