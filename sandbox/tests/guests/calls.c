/*
 * calls.c - semantics of zvm_pread/zvm_pwrite (zerovm-reference.md section 2).
 *
 *   calls SEQ_IN RAND_IN RAND_OUT
 *
 * SEQ_IN   a sequential readable channel (e.g. /dev/stdin) holding S, |S| < 4096
 * RAND_IN  a read-only random-get channel (type 1 or 3) holding R, |R| >= 12
 * RAND_OUT a write-only random-put channel (type 2 or 3), starting empty
 * Limits must be large (every call below counts). Each argument check changes
 * exactly one thing from a call that would otherwise succeed.
 *
 * Prints key=value lines to /dev/stdout; data is lower-case hex. Expect:
 *   seq_in, rand_in, rand_out      the channel indices (desc)
 *   seq_read.I=7 ...               7-byte reads of SEQ_IN (offset 1000000, ignored);
 *                                  a short read may come from a pipe
 *   seq_bytes=|S|  seq_data=hex(S)  seq_end=0  seq_after_end=0
 *   rand_size=|R|
 *   rand_read_0=4  rand_data_0=hex(R[0..4])   (likewise _8 = R[8..12], then _2 = R[2..6])
 *   rand_clamped=3 rand_clamped_data=hex(R[|R|-3..])   16 bytes asked at |R|-3
 *   rand_at_end=0  rand_beyond_end=0                   at |R| and |R|+100
 *   read_size0=0 write_size0=0
 *   read_neg_size=-14 write_neg_size=-14              (-EFAULT)
 *   read_neg_offset=-22 write_neg_offset=-22          (-EINVAL; random channels)
 *   read_desc_m1 / read_desc_99 / read_desc_count and write_desc_*  = -22
 *   read_buf_8 / read_buf_tramp / read_buf_manifest / read_buf_text /
 *   read_buf_heap_end / read_buf_wrap / write_buf_8 / write_buf_kernel = -22
 *   write_readonly=-22 write_readonly_seq=-22 read_writeonly=-22 read_stdout=-22
 *   a line "seq_write_data=abc" (written with offset 99999, ignored), then seq_write=19
 *   rand_write_0=4 rand_write_10=2 rand_write_2=2
 *     => RAND_OUT holds exactly "AACC" + 6 zero bytes + "BB" (12 bytes)
 *   done=1
 * Exit code: 0 after done=1; 2 on a usage error (message on /dev/stderr).
 */
#include <zvm.h>

static unsigned char buf[64];
static unsigned char seq_all[4096];

static void put_kv(const char *key, int64_t v)
{
    zvm_puts(1, key);
    zvm_puts(1, "=");
    zvm_put_int(1, v);
    zvm_puts(1, "\n");
}

static void put_hex(const char *key, const unsigned char *p, int64_t n)
{
    static const char digits[] = "0123456789abcdef";
    static char line[2 * sizeof seq_all];
    int64_t len = 0;

    for (int64_t i = 0; i < n && len + 2 <= (int64_t)sizeof line; i++) {
        line[len++] = digits[p[i] >> 4];
        line[len++] = digits[p[i] & 15];
    }
    zvm_puts(1, key);
    zvm_puts(1, "=");
    zvm_write_all(1, line, len);
    zvm_puts(1, "\n");
}

/* Key "PREFIX.I" for the I-th sequential read. */
static void put_indexed(const char *prefix, int64_t i, int64_t v)
{
    zvm_puts(1, prefix);
    zvm_puts(1, ".");
    zvm_put_int(1, i);
    zvm_puts(1, "=");
    zvm_put_int(1, v);
    zvm_puts(1, "\n");
}

static int find(const char *alias)
{
    int d = zvm_channel(alias);
    if (d < 0) {
        zvm_puts(2, "calls: no channel ");
        zvm_puts(2, alias);
        zvm_puts(2, "\n");
    }
    return d;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        zvm_puts(2, "usage: calls SEQ_IN RAND_IN RAND_OUT\n");
        return 2;
    }
    int seq = find(argv[1]), rnd = find(argv[2]), out = find(argv[3]);
    if (seq < 0 || rnd < 0 || out < 0)
        return 2;
    put_kv("seq_in", seq);
    put_kv("rand_in", rnd);
    put_kv("rand_out", out);

    /* Sequential read to the end; the offset must be ignored. */
    int64_t total = 0, n = 0;
    for (int64_t i = 0; total < (int64_t)sizeof seq_all; i++) {
        int64_t want = (int64_t)sizeof seq_all - total;
        n = zvm_pread(seq, seq_all + total, want < 7 ? want : 7, 1000000);
        if (n <= 0)
            break;
        put_indexed("seq_read", i, n);
        total += n;
    }
    put_kv("seq_bytes", total);
    put_hex("seq_data", seq_all, total);
    put_kv("seq_end", n);
    put_kv("seq_after_end", zvm_pread(seq, buf, 7, 0));

    /* Random reads: any order, clamped to the channel's size. */
    int64_t size = MANIFEST->channels[rnd].size;
    put_kv("rand_size", size);
    n = zvm_pread(rnd, buf, 4, 0);
    put_kv("rand_read_0", n);
    put_hex("rand_data_0", buf, n);
    n = zvm_pread(rnd, buf, 4, 8);
    put_kv("rand_read_8", n);
    put_hex("rand_data_8", buf, n);
    n = zvm_pread(rnd, buf, 4, 2);
    put_kv("rand_read_2", n);
    put_hex("rand_data_2", buf, n);
    n = zvm_pread(rnd, buf, 16, size - 3);
    put_kv("rand_clamped", n);
    put_hex("rand_clamped_data", buf, n);
    put_kv("rand_at_end", zvm_pread(rnd, buf, 16, size));
    put_kv("rand_beyond_end", zvm_pread(rnd, buf, 16, size + 100));

    /* Sizes and offsets. */
    put_kv("read_size0", zvm_pread(rnd, buf, 0, 0));
    put_kv("write_size0", zvm_pwrite(1, "x", 0, 0));
    put_kv("read_neg_size", zvm_pread(rnd, buf, -1, 0));
    put_kv("write_neg_size", zvm_pwrite(out, "x", -1, 0));
    put_kv("read_neg_offset", zvm_pread(rnd, buf, 4, -1));
    put_kv("write_neg_offset", zvm_pwrite(out, "x", 1, -1));

    /* Descriptors that name no channel. */
    int count = (int)MANIFEST->channels_count;
    put_kv("read_desc_m1", zvm_pread(-1, buf, 4, 0));
    put_kv("read_desc_99", zvm_pread(99, buf, 4, 0));
    put_kv("read_desc_count", zvm_pread(count, buf, 4, 0));
    put_kv("write_desc_m1", zvm_pwrite(-1, "x", 1, 0));
    put_kv("write_desc_99", zvm_pwrite(99, "x", 1, 0));
    put_kv("write_desc_count", zvm_pwrite(count, "x", 1, 0));

    /* Buffers the guest may not access (for that direction). */
    char *heap_end = (char *)MANIFEST->heap_ptr + MANIFEST->heap_size;
    put_kv("read_buf_8", zvm_pread(rnd, (void *)8, 4, 0));
    put_kv("read_buf_tramp", zvm_pread(rnd, (void *)ZVM_TRAMPOLINE, 4, 0));
    put_kv("read_buf_manifest", zvm_pread(rnd, (void *)ZVM_MANIFEST_ADDR, 4, 0));
    put_kv("read_buf_text", zvm_pread(rnd, (void *)(uintptr_t)&main, 4, 0));
    put_kv("read_buf_heap_end", zvm_pread(rnd, heap_end - 2, 4, 0)); /* straddles the end */
    put_kv("read_buf_wrap", zvm_pread(rnd, (void *)-2, 4, 0));       /* buf + size wraps */
    put_kv("write_buf_8", zvm_pwrite(out, (void *)8, 4, 0));
    put_kv("write_buf_kernel", zvm_pwrite(out, (void *)0xffff800000000000UL, 4, 0));

    /* The wrong direction for the channel. */
    put_kv("write_readonly", zvm_pwrite(rnd, "x", 1, 0));
    put_kv("write_readonly_seq", zvm_pwrite(seq, "x", 1, 0));
    put_kv("read_writeonly", zvm_pread(out, buf, 1, 0));
    put_kv("read_stdout", zvm_pread(1, buf, 1, 0));

    /* Sequential write: one call, the offset is ignored. */
    static const char line[] = "seq_write_data=abc\n";
    put_kv("seq_write", zvm_pwrite(1, line, (int64_t)sizeof line - 1, 99999));

    /* Random writes at offsets, out of order and leaving a hole. */
    put_kv("rand_write_0", zvm_pwrite(out, "AAAA", 4, 0));
    put_kv("rand_write_10", zvm_pwrite(out, "BB", 2, 10));
    put_kv("rand_write_2", zvm_pwrite(out, "CC", 2, 2));

    put_kv("done", 1);
    return 0;
}
