/*
 * manifest.c - dump the guest's read-only description of itself (MANIFEST),
 * its argv and environment, and check the heap is writable end to end.
 *
 *   manifest [NAME...]     also prints zvm_getenv(NAME) for each NAME, and for
 *                          a NAME starting with /dev/ the channels whose alias
 *                          starts with it, as zvm_channel_next walks them
 *
 * Prints key=value lines to /dev/stdout (numbers in decimal):
 *   heap_ptr=4294967296 heap_size=... stack_size=... channels_count=N
 *   channel.I.name / .type / .gets / .get_size / .puts / .put_size / .size
 *     for I = 0..N-1: 0,1,2 are /dev/stdin, /dev/stdout, /dev/stderr, the
 *     rest sorted by alias; size is 0 for sequential channels
 *   argc=... argv.I=...    env.I=NAME=VALUE (from the manifest's Env)
 *   getenv.NAME=VALUE      or getenv.NAME=(unset)
 *   next.NAME=D,D,...      the descs zvm_channel_next(NAME, ...) returned, in
 *                          order, up to its -1 (empty when there is none)
 *   stack_probe=ADDR       address of a local: below 0xF0000000, within stack_size
 *   heap_rw=ok             the heap's first and last byte were written and read back
 * Exit code: 0; 3 if the heap read back wrong (heap_rw=bad); heap_size 0
 * prints heap_rw=empty and still exits 0.
 */
#include <zvm.h>

static void put_kv(const char *key, int64_t v)
{
    zvm_puts(1, key);
    zvm_puts(1, "=");
    zvm_put_int(1, v);
    zvm_puts(1, "\n");
}

static void put_ks(const char *key, const char *v)
{
    zvm_puts(1, key);
    zvm_puts(1, "=");
    zvm_puts(1, v ? v : "(null)");
    zvm_puts(1, "\n");
}

/* "PREFIX.I.FIELD=" (FIELD may be empty: "PREFIX.I="). */
static void put_key(const char *prefix, int64_t i, const char *field)
{
    zvm_puts(1, prefix);
    zvm_puts(1, ".");
    zvm_put_int(1, i);
    if (*field) {
        zvm_puts(1, ".");
        zvm_puts(1, field);
    }
    zvm_puts(1, "=");
}

static void put_channel_num(int64_t i, const char *field, int64_t v)
{
    put_key("channel", i, field);
    zvm_put_int(1, v);
    zvm_puts(1, "\n");
}

int main(int argc, char **argv, char **envp)
{
    const struct UserManifest *m = MANIFEST;

    put_kv("heap_ptr", (int64_t)(uintptr_t)m->heap_ptr);
    put_kv("heap_size", (int64_t)m->heap_size);
    put_kv("stack_size", (int64_t)m->stack_size);
    put_kv("channels_count", m->channels_count);
    for (int64_t i = 0; i < m->channels_count; i++) {
        const struct ZVMChannel *c = &m->channels[i];
        put_key("channel", i, "name");
        zvm_puts(1, c->name ? c->name : "(null)");
        zvm_puts(1, "\n");
        put_channel_num(i, "type", c->type);
        put_channel_num(i, "gets", c->limits[GetsLimit]);
        put_channel_num(i, "get_size", c->limits[GetSizeLimit]);
        put_channel_num(i, "puts", c->limits[PutsLimit]);
        put_channel_num(i, "put_size", c->limits[PutSizeLimit]);
        put_channel_num(i, "size", c->size);
    }

    put_kv("argc", argc);
    for (int i = 0; i < argc; i++) {
        put_key("argv", i, "");
        zvm_puts(1, argv[i]);
        zvm_puts(1, "\n");
    }
    for (int i = 0; envp[i]; i++) {
        put_key("env", i, "");
        zvm_puts(1, envp[i]);
        zvm_puts(1, "\n");
    }
    for (int i = 1; i < argc; i++) {
        const char *v = zvm_getenv(argv[i]);
        zvm_puts(1, "getenv.");
        put_ks(argv[i], v ? v : "(unset)");
        if (strncmp(argv[i], "/dev/", 5) != 0)
            continue;
        zvm_puts(1, "next.");
        zvm_puts(1, argv[i]);
        zvm_puts(1, "=");
        for (int d = zvm_channel_next(argv[i], -1); d >= 0; d = zvm_channel_next(argv[i], d)) {
            zvm_put_int(1, d);
            if (zvm_channel_next(argv[i], d) >= 0)
                zvm_puts(1, ",");
        }
        zvm_puts(1, "\n");
    }

    volatile char probe = 0;
    put_kv("stack_probe", (int64_t)(uintptr_t)&probe);

    if (m->heap_size == 0) {
        put_ks("heap_rw", "empty");
        return 0;
    }
    volatile unsigned char *first = (volatile unsigned char *)m->heap_ptr;
    volatile unsigned char *last = first + m->heap_size - 1;
    *first = 0x5a;
    *last = 0xa5;
    if (*first != 0x5a || *last != 0xa5) {
        put_ks("heap_rw", "bad");
        return 3;
    }
    put_ks("heap_rw", "ok");
    return 0;
}
