/*
 * stream.h - what producer.c, filter.c and sink.c share: the stream's definition, the
 * checksum, and finding the one input and one output channel of a pipeline stage.
 *
 * The stream of N bytes: the first N bytes of the little-endian 64-bit words of
 * xorshift64* (x ^= x >> 12; x ^= x << 25; x ^= x >> 27; word = x * 0x2545F4914F6CDD1D)
 * from x = STREAM_SEED. The filter XORs every byte with FILTER_XOR.
 *
 * The checksum (sink): FNV-1a 64 over 64-bit words instead of bytes, so it costs one
 * multiply per 8 bytes: h = 0xcbf29ce484222325; for each little-endian 64-bit word w of
 * the data, the last one zero-padded, h = (h ^ w) * 0x100000001b3; finally
 * h = (h ^ N) * 0x100000001b3 with N the byte count.
 */
#ifndef STREAM_H
#define STREAM_H

#include <zvm.h>

#define STREAM_SEED 0x9e3779b97f4a7c15ULL
#define FILTER_XOR 0x5a
#define IO_SIZE (1 << 20)

static inline uint64_t xorshift64star(uint64_t *x)
{
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return *x * 0x2545f4914f6cdd1dULL;
}

#define SUM_OFFSET 0xcbf29ce484222325ULL
#define SUM_PRIME 0x100000001b3ULL

/* The one channel whose alias starts with `prefix` ("/dev/in/", "/dev/out/"), or
 * `fallback` (a standard channel) if there is none, so a stage also runs alone under
 * zvsh with its standard input and output. More than one: says so and exits with 2. */
static inline int one_channel(const char *who, const char *prefix, int fallback)
{
    int found = zvm_channel_next(prefix, -1);

    if (found < 0)
        return fallback;
    if (zvm_channel_next(prefix, found) >= 0) {
        zvm_puts(2, who);
        zvm_puts(2, ": more than one ");
        zvm_puts(2, prefix);
        zvm_puts(2, " channel; a pipeline stage has one\n");
        zvm_exit(2);
    }
    return found;
}

#endif
