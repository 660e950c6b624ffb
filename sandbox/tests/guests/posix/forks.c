/*
 * forks.c - a POSIX daemon (zvm-cc): opens a file of its image and fills a
 * table, then fork(), which is zvm_fork. Without `Job` fork fails (ENOSYS):
 * prints "fork=ENOSYS" and exits 3. In each job's copy (fork returned 0)
 * it reads a line of its /dev/stdin and prints
 *   "pid=0 in=LINE kept=FIRST LINE OF THE FILE opened=SAME, OPENED NOW sum=S"
 * (kept/opened "none" when the job gives no image channel), then scribbles
 * over the table: the next copy must still see the daemon's.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int table[1000];

static void chomp(char *s) { s[strcspn(s, "\n")] = 0; }

int main(void)
{
    for (int i = 0; i < 1000; i++) table[i] = i;
    FILE *kept = fopen("/data/greeting.txt", "r");
    pid_t pid = fork();
    if (pid < 0) {
        printf("fork=%s\n", errno == ENOSYS ? "ENOSYS" : strerror(errno));
        return 3;
    }
    char in[100] = "", first[100] = "none", again[100] = "none";
    if (!fgets(in, sizeof in, stdin)) strcpy(in, "none");
    if (!kept || !fgets(first, sizeof first, kept)) strcpy(first, "none");
    FILE *now = fopen("/data/greeting.txt", "r");
    if (!now || !fgets(again, sizeof again, now)) strcpy(again, "none");
    chomp(in);
    chomp(first);
    chomp(again);
    long sum = 0;
    for (int i = 0; i < 1000; i++) sum += table[i];
    printf("pid=%d in=%s kept=%s opened=%s sum=%ld\n", (int)pid, in, first, again, sum);
    memset(table, 0, sizeof table);
    return 0;
}
