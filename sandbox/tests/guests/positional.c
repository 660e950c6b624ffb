/*
 * positional.c - writes and reads at offsets, through the gates or around them.
 *
 *   positional gate ALIAS OFFSET...       zvm_pwrite(ALIAS, "hello", 5, OFFSET)
 *   positional raw-pwrite ALIAS OFFSET... pwrite64(fd, "hello", 5, OFFSET)
 *   positional raw-pread ALIAS OFFSET...  pread64(fd, buf, 5, OFFSET)
 *
 * The raw forms skip the gate's checks: they find the trampoline's own
 * `syscall` instruction (bytes 0f 05) and call it with the registers set and
 * ALIAS's kernel descriptor from the gate table, so the call comes from the
 * page seccomp trusts, as a positional call on whatever channel ALIAS is.
 * Before the writing forms, "abc" goes to ALIAS through zvm_pwrite at offset 0
 * (a sequential channel appends it). For each OFFSET (decimal) prints
 * "rI=RESULT" (I counting from 0) to /dev/stderr, then "done=1".
 * Expect: a sequential channel never holds more than the bytes written to it
 * (the offset is ignored, or the call is refused as a forbidden call); a
 * random channel's file does not grow past its size at start plus put_size
 * (-EDQUOT from the supervisor, -EFBIG or SIGXFSZ from the kernel).
 * Exit code 2 on a usage error or if the page holds no 0f 05.
 */
#include <zvm.h>

#include "gadget.h"

#define GATE_TABLE (ZVM_MANIFEST_ADDR + 64)

int main(int argc, char **argv)
{
    static const char hello[] = "hello";
    static char buf[8];
    int gate = argc > 2 && !strcmp(argv[1], "gate");
    int raw_write = argc > 2 && !strcmp(argv[1], "raw-pwrite");
    int raw_read = argc > 2 && !strcmp(argv[1], "raw-pread");
    int desc = argc > 2 ? zvm_channel(argv[2]) : -1;
    if (!(gate || raw_write || raw_read) || desc < 0) {
        zvm_puts(2, "usage: positional gate|raw-pwrite|raw-pread ALIAS OFFSET...\n");
        return 2;
    }
    int64_t gadget = find_syscall();
    if (gadget < 0)
        return 2;
    long fd = *(const volatile int32_t *)(GATE_TABLE + 8 * (uintptr_t)desc);
    if (!raw_read)
        zvm_pwrite(desc, "abc", 3, 0);
    for (int i = 3; i < argc; i++) {
        int64_t offset = zvm_parse_u64(argv[i]);
        if (offset < 0)
            return 2;
        long r;
        if (gate)
            r = zvm_pwrite(desc, hello, 5, offset);
        else
            r = call_gadget(ZVM_TRAMPOLINE + (uintptr_t)gadget, raw_read ? 17 : 18, fd,
                            (long)(uintptr_t)(raw_read ? buf : hello), 5, offset);
        zvm_puts(2, "r");
        zvm_put_int(2, i - 3);
        zvm_puts(2, "=");
        zvm_put_int(2, r);
        zvm_puts(2, "\n");
    }
    zvm_puts(2, "done=1\n");
    return 0;
}
