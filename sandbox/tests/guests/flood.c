/*
 * flood.c - write 64 KiB chunks to /dev/stdout until a call fails.
 *
 * The runtime must stop this with the channel's limits: the first negative
 * result should be -EDQUOT (-122) once puts or put_size is used up.
 * Writes only 'f' bytes to /dev/stdout; the summary goes to /dev/stderr:
 *   flood_calls=C flood_bytes=B flood_result=R
 * Exit code: 0 if R == -122, 1 otherwise.
 */
#include <zvm.h>

#define EDQUOT 122

static char chunk[64 * 1024];

static void put_kv(const char *key, int64_t v)
{
    zvm_puts(2, key);
    zvm_puts(2, "=");
    zvm_put_int(2, v);
    zvm_puts(2, "\n");
}

int main(void)
{
    int64_t calls = 0, bytes = 0, r;

    memset(chunk, 'f', sizeof chunk);
    while ((r = zvm_pwrite(1, chunk, sizeof chunk, 0)) >= 0) {
        calls++;
        bytes += r;
    }
    put_kv("flood_calls", calls);
    put_kv("flood_bytes", bytes);
    put_kv("flood_result", r);
    return r == -EDQUOT ? 0 : 1;
}
