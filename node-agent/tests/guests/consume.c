/*
 * consume.c - read this guest's /dev/in/ channel to end of stream and print
 * what came: "bytes=N fnv=HEX" (FNV-1a 64 of every byte, 16 hex digits).
 *
 *   consume [count|slow]
 *
 * `count` skips the checksum and prints only "bytes=N" (for throughput runs);
 * `slow` reads 4 KiB at a time and spins a while after each read, so a fast
 * writer has to wait for it. Exit code: 0, 1 without a /dev/in/ channel, 2 if
 * a read failed (its result is printed on stderr).
 */
#include <zvm.h>

static unsigned char buf[1024 * 1024];

static void put_hex(uint64_t v)
{
    char s[16];
    for (int i = 15; i >= 0; i--, v >>= 4)
        s[i] = "0123456789abcdef"[v & 15];
    zvm_write_all(1, s, 16);
}

int main(int argc, char **argv)
{
    int in = zvm_channel_next("/dev/in/", -1);
    int count_only = argc > 1 && strcmp(argv[1], "count") == 0;
    int slow = argc > 1 && strcmp(argv[1], "slow") == 0;
    int64_t want = slow ? 4096 : (int64_t)sizeof buf;
    uint64_t h = 0xcbf29ce484222325ull;
    int64_t bytes = 0;
    volatile uint64_t spin = 0;

    if (in < 0) {
        zvm_puts(2, "consume needs a /dev/in/ channel\n");
        return 1;
    }
    for (;;) {
        int64_t n = zvm_pread(in, buf, want, 0);
        if (n < 0) {
            zvm_puts(2, "read failed: ");
            zvm_put_int(2, n);
            zvm_puts(2, "\n");
            return 2;
        }
        if (n == 0)
            break;
        bytes += n;
        if (!count_only)
            for (int64_t i = 0; i < n; i++)
                h = (h ^ buf[i]) * 0x100000001b3ull;
        for (int i = 0; slow && i < 20000; i++)
            spin += (uint64_t)i;
    }
    zvm_puts(1, "bytes=");
    zvm_put_int(1, bytes);
    if (!count_only) {
        zvm_puts(1, " fnv=");
        put_hex(h);
    }
    zvm_puts(1, "\n");
    return 0;
}
