/*
 * wc.c - print "LINES WORDS BYTES\n" for /dev/stdin, like `wc`.
 *
 * A word is a maximal run of bytes that are not ASCII whitespace
 * (space, \t, \n, \v, \f, \r). Exit code: 0, or 1 if a call failed.
 */
#include <zvm.h>

static char buf[64 * 1024];

static int is_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

int main(void)
{
    int64_t lines = 0, words = 0, bytes = 0;
    int in_word = 0;

    for (;;) {
        int64_t n = zvm_pread(0, buf, sizeof buf, 0);
        if (n < 0)
            return 1;
        if (n == 0)
            break;
        for (int64_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)buf[i];
            lines += c == '\n';
            if (is_space(c))
                in_word = 0;
            else if (!in_word)
                in_word = 1, words++; /* a word starts here */
        }
        bytes += n;
    }

    if (zvm_put_int(1, lines) < 0 || zvm_puts(1, " ") < 0 || zvm_put_int(1, words) < 0 ||
        zvm_puts(1, " ") < 0 || zvm_put_int(1, bytes) < 0 || zvm_puts(1, "\n") < 0)
        return 1;
    return 0;
}
