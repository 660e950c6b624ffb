/*
 * filter.c - the middle stage of examples/pipeline: copies its /dev/in/ channel to its
 * /dev/out/ channel (/dev/stdin and /dev/stdout if it has none) to the end, with every
 * byte XORed with FILTER_XOR (stream.h): cheap, and a sink can tell it happened.
 *
 * Reads and writes of up to 1 MiB; the XOR goes 8 bytes at a time. Exit codes: 0 done;
 * 1 a read or write failed; 2 more than one /dev/in/ or /dev/out/ channel.
 */
#include <zvm.h>

#include "stream.h"

#define WHO "filter"

static uint64_t buf[IO_SIZE / 8];

int main(void)
{
    int in = one_channel(WHO, "/dev/in/", 0);
    int out = one_channel(WHO, "/dev/out/", 1);
    const uint64_t mask = 0x0101010101010101ULL * FILTER_XOR;

    for (;;) {
        int64_t n = zvm_pread(in, buf, sizeof buf, 0);
        if (n < 0) {
            zvm_say_failed(WHO, "read from ", MANIFEST->channels[in].name, n);
            return 1;
        }
        if (n == 0)
            return 0;
        /* Whole words; the bytes of a last partial word past n are XORed but not written. */
        for (int64_t k = 0; k < (n + 7) / 8; k++)
            buf[k] ^= mask;
        int64_t r = zvm_write_all(out, buf, n);
        if (r != n) {
            zvm_say_failed(WHO, "write to ", MANIFEST->channels[out].name, r < 0 ? r : -5);
            return 1;
        }
    }
}
