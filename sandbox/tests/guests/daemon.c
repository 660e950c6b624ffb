/*
 * daemon.c - a daemon-mode guest (manifest `Job = SOCKET`): initialises once,
 * then each job runs in a copy of it.
 *
 * Initialisation: fills a table on the heap (zvm_sbrk) and a global, and
 * counts one start (`starts`). Then zvm_fork(): in the daemon it does not
 * return; in each job's copy it returns 0 and the copy reads /dev/stdin
 * (one command) and answers on /dev/stdout:
 *   "show"    prints fork=0 starts=1 table=<sum of the table> seen=<jobs seen>
 *             then counts itself in `seen` and scribbles over the table;
 *             every copy starts from the daemon's memory, so seen=0 and the
 *             table's sum is the same in every job, whatever earlier jobs did
 *   "crash"   writes through a null pointer (a fault that kills this copy)
 *   "exit N"  exits with N
 *   "spin"    loops until its Timeout
 *   "fork"    calls zvm_fork again: prints its result (a copy is no daemon)
 * Without `Job`, zvm_fork returns -ENOSYS and the guest prints
 * "fork=-38" and exits 3.
 */
#include <zvm.h>

static int64_t starts;
static int64_t seen;

int main(void)
{
    int64_t *table = zvm_sbrk(4096 * 8);
    for (int i = 0; i < 4096; i++) table[i] = i;
    starts++;

    int64_t r = zvm_fork();
    if (r != 0) {
        zvm_puts(1, "fork=");
        zvm_put_int(1, r);
        zvm_puts(1, "\n");
        return 3;
    }
    char cmd[64];
    int64_t n = zvm_pread(0, cmd, sizeof cmd - 1, 0);
    if (n < 0) return 4;
    cmd[n] = 0;
    if (!strncmp(cmd, "show", 4)) {
        int64_t sum = 0;
        for (int i = 0; i < 4096; i++) sum += table[i];
        zvm_puts(1, "fork=0 starts=");
        zvm_put_int(1, starts);
        zvm_puts(1, " table=");
        zvm_put_int(1, sum);
        zvm_puts(1, " seen=");
        zvm_put_int(1, seen);
        zvm_puts(1, "\n");
        seen++;
        for (int i = 0; i < 4096; i++) table[i] = -1;
        return 0;
    }
    if (!strncmp(cmd, "crash", 5)) {
        *(volatile int *)0 = 1;
        return 5;
    }
    if (!strncmp(cmd, "exit ", 5)) return (int)zvm_parse_u64(cmd + 5);
    if (!strncmp(cmd, "spin", 4))
        for (;;) seen++;
    if (!strncmp(cmd, "fork", 4)) {
        zvm_puts(1, "again=");
        zvm_put_int(1, zvm_fork());
        zvm_puts(1, "\n");
        return 0;
    }
    return 6;
}
