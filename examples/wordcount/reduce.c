/*
 * reduce.c - the reduce guest of examples/wordcount: adds up the counts the maps send
 * and prints each word with its total, as `LC_ALL=C sort | uniq -c` would.
 *
 * Input: every channel whose alias starts with /dev/in/ (/dev/in/map-1 ... map-N), each
 * read to its end, carrying lines "COUNT WORD\n" (see map.c). With no /dev/in/ channel
 * it reads /dev/stdin, so `zvsh map < text | zvsh reduce` works on one machine.
 *
 * Output, on /dev/stdout: one line per distinct word, "%7d %s\n" with the total and the
 * word (uniq -c's format), the words sorted byte by byte (LC_ALL=C sort's order). With
 * one reducer that is exactly `LC_ALL=C tr -s ' ' '\n' < input | sort | uniq -c`. With
 * several, each prints the words it owns; their outputs concatenated and sorted with
 * `LC_ALL=C sort -k2` give the same text (docs/job.md).
 *
 * Why the job cannot deadlock. Channels block: a map's write waits while its pipe to a
 * reducer is full, a reducer's read waits while its pipe from a map is empty, and the
 * guest has no call to wait on several channels at once. So a reducer reads its /dev/in/
 * channels one after another, each to its end, in the order the guest sees them (sorted
 * by alias), which is the same order in every reducer. Take the first map in that order
 * that has not finished: every reducer has read all the maps before it to their end (they
 * finished, so their data ended), so every reducer is reading this map or is about to;
 * whichever reducer this map waits on drains it, so it finishes too. By induction, all
 * maps finish and then all reducers. (Reading round-robin could deadlock with two
 * reducers: reducer A waits on map-1, which waits on a full pipe to reducer B, which waits
 * on map-2, which waits on a full pipe to A. Different orders in different reducers could
 * deadlock the same way.) A map that is not first may wait on a full pipe; maps send their
 * counts only at the end (map.c) so in practice they wait only once they are done counting.
 *
 * Memory: every distinct word of this reducer's share, in the word table (words.h),
 * plus a read buffer and an output buffer (an eighth of the heap each, at most 1 MiB).
 * Once the input ends, the table's used slots are packed at the front of the slot array
 * and merge-sorted, with the free half of that array as the scratch space.
 *
 * Exit codes: 0 done; 1 a read or write failed; 2 Memory too small for the buffers;
 * 3 more distinct words than Memory holds; 4 an input line that is not "COUNT WORD\n".
 */
#include <zvm.h>

#include "words.h"

#define WHO "reduce"

static struct table table;

static void __attribute__((noreturn)) too_many(void)
{
    zvm_puts(2, WHO ": more distinct words than fit in memory (");
    zvm_put_int(2, (int64_t)table.used);
    zvm_puts(2, " words in ");
    zvm_put_int(2, (int64_t)table.nslots);
    zvm_puts(2, " slots and ");
    zvm_put_int(2, (int64_t)(table.store_used + table.part_len));
    zvm_puts(2, " bytes of words); give the reduce group more memory or more instances\n");
    zvm_exit(3);
}

static void __attribute__((noreturn)) malformed(const char *name, const char *why)
{
    zvm_puts(2, WHO ": ");
    zvm_puts(2, name);
    zvm_puts(2, ": ");
    zvm_puts(2, why);
    zvm_puts(2, "; expected lines \"COUNT WORD\" from map\n");
    zvm_exit(4);
}

/* Reads channel `desc` to its end through buf[0..size), adding its counts to the table. */
static void read_counts(int desc, const char *name, unsigned char *buf, uint64_t size)
{
    enum { COUNT, WORD } state = COUNT;
    uint64_t count = 0, digits = 0;
    int in_word = 0; /* the last read ended inside a word (collected in the table's part) */

    for (;;) {
        int64_t n = zvm_pread(desc, buf, (int64_t)size, 0);
        if (n < 0) {
            zvm_say_failed(WHO, "read from ", name, n);
            zvm_exit(1);
        }
        if (n == 0)
            break;
        uint64_t i = 0, end = (uint64_t)n;
        while (i < end) {
            if (state == COUNT) {
                unsigned char c = buf[i++];
                if (c >= '0' && c <= '9') {
                    if (count > (UINT64_MAX - 9) / 10)
                        malformed(name, "a count too large");
                    count = count * 10 + (uint64_t)(c - '0');
                    digits++;
                } else if (c == ' ' && digits > 0 && count > 0) {
                    state = WORD;
                } else {
                    malformed(name, "a line that does not start with a count above 0 and a space");
                }
                continue;
            }
            uint64_t start = i;
            while (i < end && buf[i] != '\n')
                i++;
            if (i == end || in_word) {
                /* The word runs past this read, or began in an earlier one: collect it. */
                if (table_part_append(&table, buf + start, i - start) != 0)
                    too_many();
                in_word = 1;
                if (i == end)
                    break;
                if (table_add_part(&table, count) != 0)
                    too_many();
                in_word = 0;
            } else {
                const unsigned char *w = buf + start;
                uint64_t len = i - start;
                if (table_add(&table, w, len, word_hash(w, len), word_key(w, len), count) != 0)
                    too_many();
            }
            i++; /* the newline */
            state = COUNT;
            count = digits = 0;
        }
    }
    if (state != COUNT || digits)
        malformed(name, "the data ends inside a line");
}

/* Whether slot a's word sorts before slot b's, byte by byte; the key holds the first 8
 * bytes, so most comparisons end there. */
static int before(const struct slot *a, const struct slot *b)
{
    if (a->key != b->key)
        return a->key < b->key;
    const unsigned char *x = table.store + a->off, *y = table.store + b->off;
    uint32_t n = a->len < b->len ? a->len : b->len;
    for (uint32_t k = 8; k < n; k++)
        if (x[k] != y[k])
            return x[k] < y[k];
    return a->len < b->len;
}

/* Sorts a[0..n) using tmp[0..n); returns the array that holds the result. */
static struct slot *sort_slots(struct slot *a, struct slot *tmp, uint64_t n)
{
    const uint64_t run = 16;

    /* Insertion sort of short runs, then bottom-up merges. */
    for (uint64_t lo = 0; lo < n; lo += run) {
        uint64_t hi = lo + run < n ? lo + run : n;
        for (uint64_t i = lo + 1; i < hi; i++) {
            struct slot x = a[i];
            uint64_t j = i;
            for (; j > lo && before(&x, &a[j - 1]); j--)
                a[j] = a[j - 1];
            a[j] = x;
        }
    }
    for (uint64_t width = run; width < n; width *= 2) {
        for (uint64_t lo = 0; lo < n; lo += 2 * width) {
            uint64_t mid = lo + width < n ? lo + width : n;
            uint64_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            uint64_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                tmp[k++] = before(&a[j], &a[i]) ? a[j++] : a[i++];
            while (i < mid)
                tmp[k++] = a[i++];
            while (j < hi)
                tmp[k++] = a[j++];
        }
        struct slot *t = a;
        a = tmp;
        tmp = t;
    }
    return a;
}

int main(void)
{
    /* Read and output buffers: an eighth of the heap each, at most 1 MiB. */
    uint64_t io = MANIFEST->heap_size / 8 < (1 << 20) ? (MANIFEST->heap_size / 8) & ~(uint64_t)7 : (1 << 20);
    unsigned char *in = heap_take(WHO, io);
    struct out out = { .desc = 1, .name = "/dev/stdout", .buf = heap_take(WHO, io), .size = io };
    int inputs = 0;
    char num[24];

    if (table_init(&table, heap_rest()) != 0) {
        say(WHO, "Memory is too small for the word table; give the reduce group more memory");
        return 2;
    }
    for (int c = zvm_channel_next("/dev/in/", -1); c >= 0; c = zvm_channel_next("/dev/in/", c), inputs++)
        read_counts(c, MANIFEST->channels[c].name, in, io);
    if (inputs == 0)
        read_counts(0, "/dev/stdin", in, io);

    /* Pack the used slots at the front. */
    uint64_t n = 0;
    for (uint64_t i = 0; i < table.nslots; i++)
        if (table.slots[i].count)
            table.slots[n++] = table.slots[i];
    /* n <= nslots / 2: the second half of the slot array is free. */
    struct slot *sorted = sort_slots(table.slots, table.slots + table.nslots - n, n);

    for (uint64_t i = 0; i < n; i++) {
        char *c = format_count(num, sorted[i].count, 7);
        int64_t r = out_line(&out, c, (uint64_t)(num + sizeof num - c), table.store + sorted[i].off, sorted[i].len);
        if (r < 0) {
            zvm_say_failed(WHO, "write to ", out.name, r);
            return 1;
        }
    }
    int64_t r = out_flush(&out);
    if (r < 0) {
        zvm_say_failed(WHO, "write to ", out.name, r);
        return 1;
    }
    return 0;
}
