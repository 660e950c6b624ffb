/*
 * limits.c - exhaust a channel's call or byte limit.
 *
 *   limits ALIAS read|write CHUNK
 *
 * Calls zvm_pread (read) or zvm_pwrite (write) on ALIAS with CHUNK bytes
 * (1..1048576) again and again, advancing the offset by each result (which
 * sequential channels ignore), until a call returns a negative result. End of
 * data (0) does not stop the loop: it still counts against the limits.
 * Prints key=value lines, to /dev/stdout, or to /dev/stderr when ALIAS is
 * /dev/stdout in write mode (stdout's quota is what ran out):
 *   desc=D calls=C bytes=B result=R
 * where C counts the calls that returned >= 0, B the bytes they moved, and R
 * is the first negative result. Expect R=-122 (-EDQUOT), with C and B fixed by
 * the limits: puts=5 -> calls=5 bytes=5*CHUNK; a size limit L -> B <= L
 * (whether the last call may move a partial chunk is the runtime's rule).
 * Exit code: 0 if R == -122, 1 for another result, 2 on a usage error.
 * Caution: a read-only channel with a huge gets limit loops until Timeout.
 */
#include <zvm.h>

#define EDQUOT 122
#define MAX_CHUNK (1 << 20)

static char buf[MAX_CHUNK];

static void put_kv(int desc, const char *key, int64_t v)
{
    zvm_puts(desc, key);
    zvm_puts(desc, "=");
    zvm_put_int(desc, v);
    zvm_puts(desc, "\n");
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        zvm_puts(2, "usage: limits ALIAS read|write CHUNK\n");
        return 2;
    }
    int desc = zvm_channel(argv[1]);
    int writing = strcmp(argv[2], "write") == 0;
    int64_t chunk = zvm_parse_u64(argv[3]);
    if (desc < 0 || (!writing && strcmp(argv[2], "read") != 0) || chunk < 1 || chunk > MAX_CHUNK) {
        zvm_puts(2, "limits: bad channel, mode or chunk\n");
        return 2;
    }
    memset(buf, 'z', sizeof buf);

    int64_t calls = 0, bytes = 0, offset = 0, r;
    for (;;) {
        r = writing ? zvm_pwrite(desc, buf, chunk, offset) : zvm_pread(desc, buf, chunk, offset);
        if (r < 0)
            break;
        calls++;
        bytes += r;
        offset += r;
    }

    int out = (writing && desc == 1) ? 2 : 1;
    put_kv(out, "desc", desc);
    put_kv(out, "calls", calls);
    put_kv(out, "bytes", bytes);
    put_kv(out, "result", r);
    return r == -EDQUOT ? 0 : 1;
}
