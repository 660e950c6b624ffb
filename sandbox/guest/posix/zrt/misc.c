/*
 * misc.c - time, randomness and start-up configuration.
 *
 * ZeroVM guests are deterministic: the same program and inputs give the same
 * run. So the clock is the guest's own: it starts at ZRT_EPOCH and advances
 * 1 us at every reading (a loop waiting for time to pass still ends) and by
 * the full duration of every sleep, which returns at once. Randomness
 * (getrandom, /dev/urandom is not emulated) is a xoshiro256** stream seeded
 * from the 16 AT_RANDOM bytes the jail puts on the stack, which are derived
 * from the program, so runs repeat.
 *
 * nvram: ZRT's configuration channel. If the manifest has a /dev/nvram
 * channel, its [fstab] section names the tar images to mount:
 *     [fstab]
 *     channel=/dev/1.python.tar, mountpoint=/, access=ro
 * (zvsh writes it for --zvm-image). Images are read-only; writes under them
 * go to the in-memory overlay.
 */
#include <string.h>
#include <errno.h>
#include <time.h>
#include <sys/auxv.h>
#include "zrt.h"

/* 2013-06-01, the year ZeroVM was released: a plausible, fixed date. */
#define ZRT_EPOCH 1370044800LL

static int64_t ticks_ns;

int64_t zrt_now_ns(void) { return ZRT_EPOCH * 1000000000LL + ticks_ns; }

long zrt_clock_gettime(int clk, struct timespec *ts)
{
    if (clk < 0 || clk > CLOCK_BOOTTIME)
        return -EINVAL;
    ticks_ns += 1000;
    int64_t ns = clk == CLOCK_REALTIME || clk == CLOCK_REALTIME_COARSE ? zrt_now_ns() : ticks_ns;
    ts->tv_sec = ns / 1000000000;
    ts->tv_nsec = ns % 1000000000;
    return 0;
}

long zrt_sleep(const struct timespec *ts)
{
    if (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000)
        return -EINVAL;
    ticks_ns += ts->tv_sec * 1000000000LL + ts->tv_nsec;
    return 0;
}

static uint64_t s[4];
static int seeded;

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t next(void)
{
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

long zrt_getrandom(void *buf, size_t n, unsigned flags)
{
    (void)flags;
    if (!seeded) {
        const uint64_t *seed = (const uint64_t *)getauxval(AT_RANDOM);
        /* splitmix64 spreads the 128-bit seed over the 256-bit state */
        uint64_t x = seed ? seed[0] ^ rotl(seed[1], 32) : 0;
        for (int i = 0; i < 4; i++) {
            uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
            s[i] = z ^ (z >> 31) ^ (seed ? seed[i & 1] : 0);
        }
        seeded = 1;
    }
    unsigned char *p = buf;
    for (size_t i = 0; i < n; i += 8) {
        uint64_t v = next();
        memcpy(p + i, &v, n - i < 8 ? n - i : 8);
    }
    return (long)n;
}

/* Reads channel c (at most sizeof buf - 1 bytes) into buf. */
static size_t slurp(int c, char *buf, size_t cap)
{
    size_t n = 0;
    while (n < cap - 1) {
        int64_t r = zvm_pread(c, buf + n, (int64_t)(cap - 1 - n), (int64_t)n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    buf[n] = 0;
    return n;
}

/* The value of `key=` in a "k=v, k=v" line, copied to out; 0 if absent. */
static int field(const char *line, const char *end, const char *key, char *out, size_t cap)
{
    size_t kl = strlen(key);
    for (const char *p = line; p + kl < end; p++) {
        if ((p == line || p[-1] == ' ' || p[-1] == ',') && !memcmp(p, key, kl) && p[kl] == '=') {
            const char *v = p + kl + 1, *e = v;
            while (e < end && *e != ',')
                e++;
            while (e > v && e[-1] == ' ')
                e--;
            size_t n = (size_t)(e - v);
            if (n >= cap)
                return 0;
            memcpy(out, v, n);
            out[n] = 0;
            return 1;
        }
    }
    return 0;
}

void zrt_nvram(void)
{
    static char text[16384];
    int c = zrt_channel("/dev/nvram");
    if (c < 0)
        return;
    size_t n = slurp(c, text, sizeof text);
    int in_fstab = 0;
    for (char *line = text; line < text + n;) {
        char *end = line;
        while (end < text + n && *end != '\n')
            end++;
        while (*line == ' ' || *line == '\t')
            line++;
        if (*line == '[')
            in_fstab = !strncmp(line, "[fstab]", 7);
        char alias[256], mount[1024];
        if (in_fstab && field(line, end, "channel", alias, sizeof alias) &&
            field(line, end, "mountpoint", mount, sizeof mount)) {
            size_t ml = strlen(mount);
            while (ml && mount[ml - 1] == '/')
                mount[--ml] = 0;
            int ch = zrt_channel(alias);
            if (ch >= 0 && (mount[0] == '/' || !ml))
                zrt_mount_tar(ch, mount);
        }
        line = end + 1;
    }
}
