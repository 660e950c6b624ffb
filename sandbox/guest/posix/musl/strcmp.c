/*
 * strcmp.c - strcmp with SSE2 (installed as src/string/x86_64/strcmp.c of
 * Debian's musl source, replacing the byte-at-a-time src/string/strcmp.c;
 * see ../build-libc). SSE2 is part of every x86-64 CPU.
 *
 * Sixteen bytes of each string are compared at once with unaligned loads. A
 * load may read past the terminator, so one is made only when its sixteen
 * bytes lie in the same 4 KiB page as its first byte (pages are the smallest
 * unit of protection, so the bytes past the terminator are as readable as the
 * terminator); near a page's end the strings go byte by byte.
 *
 * musl builds with -nostdinc, so there is no <emmintrin.h>: vectors are
 * GCC's vector types, and the byte mask is its pmovmskb builtin.
 */
#include <stdint.h>
#include <string.h>

typedef char v16 __attribute__((__vector_size__(16)));
typedef char v16u __attribute__((__vector_size__(16), __aligned__(1), __may_alias__));
#define MASK(v) ((unsigned)__builtin_ia32_pmovmskb128(v))

#define PAGE 4096

static inline int near_page_end(const char *p)
{
	return ((uintptr_t)p & (PAGE - 1)) > PAGE - 16;
}

int strcmp(const char *l, const char *r)
{
	const v16 zero = (v16){ 0 };
	for (;;) {
		while (near_page_end(l) || near_page_end(r)) {
			if (*l != *r || !*l)
				return *(unsigned char *)l - *(unsigned char *)r;
			l++;
			r++;
		}
		v16 a = *(const v16u *)l;
		v16 b = *(const v16u *)r;
		/* a bit per byte that differs or ends the left string */
		unsigned stop = (MASK(a == b) ^ 0xffff)
			| MASK(a == zero);
		if (stop) {
			unsigned i = __builtin_ctz(stop);
			return (unsigned char)l[i] - (unsigned char)r[i];
		}
		l += 16;
		r += 16;
	}
}
