/* Ordinary C through the runtime: stdio, files from the image, the overlay,
 * directories, malloc-heavy work, qsort, time and randomness. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <errno.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/random.h>

static int cmp(const void *a, const void *b) { int x = *(const int *)a, y = *(const int *)b; return (x > y) - (x < y); }

int main(int argc, char **argv)
{
    printf("argc=%d", argc);
    for (int i = 0; i < argc; i++) printf(" [%s]", argv[i]);
    printf(" HOME=%s\n", getenv("HOME") ? getenv("HOME") : "(unset)");

    FILE *f = fopen("/data/greeting.txt", "r");
    if (!f) { printf("fopen greeting: %s\n", strerror(errno)); return 1; }
    char line[256];
    while (fgets(line, sizeof line, f)) printf("image: %s", line);
    fclose(f);

    struct stat st;
    if (stat("/data/greeting.txt", &st) == 0) printf("size %lld regular %d\n", (long long)st.st_size, S_ISREG(st.st_mode));

    DIR *d = opendir("/data");
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d))) if (e->d_name[0] != '.') n++;
    if (d) closedir(d);
    printf("entries in /data: %d\n", n);

    f = fopen("/tmp/out.txt", "w");
    fprintf(f, "written %d\n", 42);
    fclose(f);
    f = fopen("/tmp/out.txt", "r");
    fgets(line, sizeof line, f);
    fclose(f);
    printf("overlay: %s", line);

    f = fopen("/data/greeting.txt", "a");
    fputs("appended\n", f);
    fclose(f);
    f = fopen("/data/greeting.txt", "r");
    int lines = 0;
    while (fgets(line, sizeof line, f)) lines++;
    fclose(f);
    printf("greeting now has %d lines\n", lines);

    size_t total = 0;
    for (int round = 0; round < 50; round++) {
        void *blocks[1000];
        for (int i = 0; i < 1000; i++) { size_t sz = (size_t)(i * 37 % 5000) + 1; blocks[i] = malloc(sz); memset(blocks[i], i, sz); total += sz; }
        for (int i = 0; i < 1000; i++) free(blocks[i]);
    }
    char *big = malloc(64 << 20);
    memset(big, 1, 64 << 20);
    big = realloc(big, 128 << 20);
    big[(128 << 20) - 1] = 2;
    free(big);
    printf("malloc total %zu\n", total);

    int *v = malloc(100000 * sizeof *v);
    unsigned seed = 12345;
    for (int i = 0; i < 100000; i++) { seed = seed * 1103515245 + 12345; v[i] = (int)(seed >> 8); }
    qsort(v, 100000, sizeof *v, cmp);
    int sorted = 1;
    for (int i = 1; i < 100000; i++) if (v[i - 1] > v[i]) sorted = 0;
    printf("qsort sorted %d\n", sorted);
    free(v);

    time_t t = time(NULL);
    unsigned char r[8];
    getrandom(r, sizeof r, 0);
    printf("time %lld random %02x%02x\n", (long long)t, r[0], r[1]);
    return 0;
}
