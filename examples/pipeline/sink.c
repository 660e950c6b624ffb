/*
 * sink.c - the last stage of examples/pipeline: reads its /dev/in/ channel (/dev/stdin
 * if it has none) to the end and prints "BYTES CHECKSUM\n" on /dev/stdout: the byte
 * count in decimal and the checksum of stream.h as 16 lower-case hex digits.
 *
 * Reads of up to 1 MiB; a read that ends inside a 64-bit word leaves the word's first
 * bytes for the next. Exit codes: 0 done; 1 a read or write failed; 2 more than one
 * /dev/in/ channel.
 */
#include <zvm.h>

#include "stream.h"

#define WHO "sink"

/* One word more than a read, for the bytes carried over. */
static uint64_t buf[IO_SIZE / 8 + 1];

int main(void)
{
    int in = one_channel(WHO, "/dev/in/", 0);
    unsigned char *bytes = (unsigned char *)buf;
    uint64_t h = SUM_OFFSET, total = 0, carry = 0; /* carry: bytes at buf's start */
    char line[48];

    for (;;) {
        int64_t n = zvm_pread(in, bytes + carry, IO_SIZE, 0);
        if (n < 0) {
            zvm_say_failed(WHO, "read from ", MANIFEST->channels[in].name, n);
            return 1;
        }
        if (n == 0)
            break;
        total += (uint64_t)n;
        uint64_t have = carry + (uint64_t)n, words = have / 8;
        for (uint64_t k = 0; k < words; k++)
            h = (h ^ buf[k]) * SUM_PRIME;
        carry = have % 8;
        memmove(bytes, bytes + words * 8, carry);
    }
    if (carry) {
        memset(bytes + carry, 0, 8 - carry);
        h = (h ^ buf[0]) * SUM_PRIME;
    }
    h = (h ^ total) * SUM_PRIME;

    /* "BYTES HEX\n", built here and written in one call. */
    char *p = line + sizeof line;
    *--p = '\n';
    for (int k = 0; k < 16; k++, h >>= 4)
        *--p = "0123456789abcdef"[h & 15];
    *--p = ' ';
    do {
        *--p = (char)('0' + total % 10);
        total /= 10;
    } while (total);
    int64_t len = line + sizeof line - p;
    if (zvm_write_all(1, p, len) != len)
        return 1;
    return 0;
}
