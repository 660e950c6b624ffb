/*
 * produce.c - write BYTES bytes of a fixed stream to this guest's /dev/out/
 * channel, then exit (closing it: the reader sees end of stream).
 *
 *   produce BYTES [CHUNK]
 *
 * The stream is one 64 KiB block of xorshift64 bytes (seed 0x9E3779B97F4A7C15,
 * the low byte of each step) repeated; the last block is cut at BYTES. Each
 * write is CHUNK bytes (default 1 MiB, at most 4 MiB). Prints "wrote=N" on
 * stdout. Exit code: 0, 1 for bad arguments or no /dev/out/ channel, 2 if a
 * write failed (its result is printed on stderr).
 */
#include <zvm.h>

#define BLOCK (64 * 1024)
#define MAX_CHUNK (4 * 1024 * 1024)

static unsigned char buf[MAX_CHUNK];

int main(int argc, char **argv)
{
    int64_t total = argc > 1 ? zvm_parse_u64(argv[1]) : -1;
    int64_t chunk = argc > 2 ? zvm_parse_u64(argv[2]) : 1024 * 1024;
    int out = zvm_channel_next("/dev/out/", -1);
    uint64_t x = 0x9E3779B97F4A7C15ull;

    if (total < 0 || chunk <= 0 || chunk > MAX_CHUNK || chunk % BLOCK || out < 0) {
        zvm_puts(2, "usage: produce BYTES [CHUNK, a multiple of 65536]; needs a /dev/out/ channel\n");
        return 1;
    }
    for (int i = 0; i < BLOCK; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        buf[i] = (unsigned char)x;
    }
    for (int64_t off = BLOCK; off < chunk; off += BLOCK)
        memcpy(buf + off, buf, BLOCK);
    for (int64_t done = 0; done < total;) {
        int64_t want = total - done < chunk ? total - done : chunk;
        int64_t n = zvm_write_all(out, buf, want);
        if (n != want) {
            zvm_puts(2, "write failed: ");
            zvm_put_int(2, n);
            zvm_puts(2, "\n");
            return 2;
        }
        done += n;
    }
    zvm_puts(1, "wrote=");
    zvm_put_int(1, total);
    zvm_puts(1, "\n");
    return 0;
}
