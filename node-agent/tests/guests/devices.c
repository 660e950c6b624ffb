/*
 * devices.c - a guest for the agent's device tests.
 *
 * Copies /dev/input (random access: read at increasing offsets) to /dev/output
 * when both exist, then /dev/stdin to /dev/stdout, then writes "image BYTES\n"
 * to /dev/stdout when it has a /dev/image (its size read by pread to the end).
 * Exit code: 0 on success, 1 if a read or write failed.
 */
#include <zvm.h>

static char buf[256 * 1024];

static int copy(int from, int to, int random)
{
    int64_t offset = 0;
    for (;;) {
        int64_t n = zvm_pread(from, buf, sizeof buf, offset);
        if (n == 0)
            return 0;
        if (n < 0 || zvm_write_all(to, buf, n) != n)
            return 1;
        if (random)
            offset += n;
    }
}

int main(void)
{
    int input = zvm_channel("/dev/input"), output = zvm_channel("/dev/output");
    int image = zvm_channel("/dev/image");
    if (input >= 0 && output >= 0 && copy(input, output, 1))
        return 1;
    if (copy(0, 1, 0))
        return 1;
    if (image >= 0) {
        int64_t size = 0, n;
        while ((n = zvm_pread(image, buf, sizeof buf, size)) > 0)
            size += n;
        if (n < 0)
            return 1;
        zvm_puts(1, "image ");
        zvm_put_int(1, size);
        zvm_puts(1, "\n");
    }
    return 0;
}
