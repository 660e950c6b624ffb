/* Lists the tree under argv[1] (default /): per entry its path, mode, size,
 * modification time, an FNV-1a hash of a file's bytes and a link's target,
 * so two images can be compared as the guest sees them. */
#define _XOPEN_SOURCE 700
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static int entry(const char *path, const struct stat *st, int type, struct FTW *at)
{
    (void)type;
    (void)at;
    uint32_t h = 2166136261u;
    if (S_ISREG(st->st_mode)) {
        int fd = open(path, O_RDONLY);
        static unsigned char buf[65536];
        ssize_t n;
        while (fd >= 0 && (n = read(fd, buf, sizeof buf)) > 0)
            for (ssize_t i = 0; i < n; i++)
                h = (h ^ buf[i]) * 16777619u;
        if (fd >= 0)
            close(fd);
    }
    char link[512] = "";
    if (S_ISLNK(st->st_mode)) {
        ssize_t n = readlink(path, link, sizeof link - 1);
        if (n > 0)
            link[n] = 0;
    }
    printf("%s %o %lld %lld %08x %s\n", path, (unsigned)st->st_mode, (long long)st->st_size, (long long)st->st_mtime,
           h, link);
    return 0;
}

int main(int argc, char **argv)
{
    return nftw(argc > 1 ? argv[1] : "/", entry, 16, FTW_PHYS) != 0;
}
