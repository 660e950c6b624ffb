/*
 * producer.c - the first stage of examples/pipeline: writes the deterministic stream of
 * stream.h, N bytes of it, to its /dev/out/ channel (/dev/stdout if it has none).
 *
 *   producer [--bytes N]      N from the argument, else the environment's BYTES,
 *                             else 1 GiB (1073741824)
 *
 * Writes of 1 MiB. Exit codes: 0 done; 1 a write failed; 2 a bad argument, or more
 * than one /dev/out/ channel.
 */
#include <zvm.h>

#include "stream.h"

#define WHO "producer"

static uint64_t buf[IO_SIZE / 8];

static void __attribute__((noreturn)) usage(const char *why)
{
    zvm_puts(2, WHO ": ");
    zvm_puts(2, why);
    zvm_puts(2, "\nusage: producer [--bytes N]  (or BYTES=N in the environment; default 1073741824)\n");
    zvm_exit(2);
}

int main(int argc, char **argv)
{
    int64_t left = 1LL << 30;
    const char *env = zvm_getenv("BYTES");
    int out = one_channel(WHO, "/dev/out/", 1);
    uint64_t x = STREAM_SEED;

    if (env && (left = zvm_parse_u64(env)) < 0)
        usage("BYTES is not a number of bytes");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--bytes") != 0 || i + 1 == argc)
            usage("unknown argument");
        if ((left = zvm_parse_u64(argv[++i])) < 0)
            usage("--bytes takes a number of bytes");
    }

    while (left > 0) {
        int64_t n = left < (int64_t)sizeof buf ? left : (int64_t)sizeof buf;
        for (int64_t k = 0; k < (n + 7) / 8; k++)
            buf[k] = xorshift64star(&x);
        int64_t r = zvm_write_all(out, buf, n);
        if (r != n) {
            zvm_say_failed(WHO, "write to ", MANIFEST->channels[out].name, r < 0 ? r : -5);
            return 1;
        }
        left -= n;
    }
    return 0;
}
