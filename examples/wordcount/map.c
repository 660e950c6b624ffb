/*
 * map.c - the map guest of examples/wordcount: counts the words of its part of the
 * input and sends each word's count to the reducer that owns the word.
 *
 * Input: /dev/stdin, streamed in reads of up to 1 MiB; memory holds the distinct
 * words, never the input. Words are as in words.h; as `tr -s ' ' '\n'` does, an input
 * that starts with a space or a newline also has one empty word (tr's output then
 * starts with an empty line, which `uniq -c` counts).
 *
 * Output: one channel per reducer, every channel whose alias starts with /dev/out/
 * (/dev/out/reduce, or /dev/out/reduce-1 ... /dev/out/reduce-R). Every map sees them in
 * the same order (sorted by alias), so word w goes to the same reducer from every map:
 * number (hash(w) >> 32) * R >> 32 in that order. With no /dev/out/ channel the counts
 * go to /dev/stdout, so `zvsh map < text | zvsh reduce` works on one machine.
 *
 * Format between map and reduce: lines "COUNT WORD\n", COUNT in decimal (at least 1).
 * A word holds no space and no newline, so the first space ends the count and the
 * newline ends the word; every other byte of the word goes as it is.
 *
 * Combining: the counts are kept in the word table (words.h) and sent when the input
 * ends, each distinct word once, through buffered writes of up to 1 MiB. When the table
 * fills up first (more distinct words than Memory holds), its counts are sent at that
 * point and it starts empty again; the reducer adds up the partial counts.
 *
 * Why this cannot deadlock: see reduce.c. Reducers read their inputs one after another,
 * in the same order in every reducer; any order of writes in the maps is then safe.
 * Sending at the end also keeps the maps counting in parallel instead of waiting for
 * the reducer to get to their channel.
 *
 * Exit codes: 0 done; 1 a read or write failed; 2 Memory too small for the buffers;
 * 3 a word longer than the memory left for the word table (most of Memory).
 */
#include <zvm.h>

#include "words.h"

#define WHO "map"

static struct table table;
static struct out *outs; /* one per reducer */
static int64_t nouts;

/* Sends every count in the table to its reducer and empties the table (keeping an
 * unfinished word). Exits with 1 if a write fails. */
static void send_counts(void)
{
    char num[24];

    for (uint64_t i = 0; i < table.nslots; i++) {
        const struct slot *s = &table.slots[i];
        if (s->count == 0)
            continue;
        struct out *o = &outs[((s->hash >> 32) * (uint64_t)nouts) >> 32];
        char *c = format_count(num, s->count, 0);
        int64_t r = out_line(o, c, (uint64_t)(num + sizeof num - c), table.store + s->off, s->len);
        if (r < 0) {
            say_failed(WHO, "write to ", o->name, r);
            zvm_exit(1);
        }
    }
    for (int64_t k = 0; k < nouts; k++) {
        int64_t r = out_flush(&outs[k]);
        if (r < 0) {
            say_failed(WHO, "write to ", outs[k].name, r);
            zvm_exit(1);
        }
    }
    table_reset(&table);
}

static void __attribute__((noreturn)) too_long(void)
{
    zvm_puts(2, WHO ": a word is longer than the ");
    zvm_put_int(2, (int64_t)(table.part_len + table_room(&table)));
    zvm_puts(2, " bytes this map can hold; give the map group more memory\n");
    zvm_exit(3);
}

/* Counts one occurrence of the word w[0..len) whose FNV-1a state is h. */
static void count_word(const unsigned char *w, uint64_t len, uint64_t h)
{
    h = word_hash(h);
    if (table_add(&table, w, len, h, 1) == 0)
        return;
    send_counts();
    if (table_add(&table, w, len, h, 1) != 0)
        too_long();
}

/* Appends b[0..n) to the word that runs past the end of a read. */
static void extend_part(const unsigned char *b, uint64_t n)
{
    if (table_part_append(&table, b, n) == 0)
        return;
    send_counts();
    if (table_part_append(&table, b, n) != 0)
        too_long();
}

/* Counts one occurrence of the word collected by extend_part, FNV-1a state h. */
static void count_part(uint64_t h)
{
    h = word_hash(h);
    if (table_add_part(&table, h, 1) == 0)
        return;
    send_counts();
    if (table_add_part(&table, h, 1) != 0)
        too_long();
}

/* Finds the reducers' channels and gives each an output buffer. */
static void open_outputs(void)
{
    uint64_t size;

    for (int c = zvm_channel_next("/dev/out/", -1); c >= 0; c = zvm_channel_next("/dev/out/", c))
        nouts++;
    outs = heap_take(WHO, sizeof(struct out) * (uint64_t)(nouts ? nouts : 1));
    if (nouts == 0) {
        outs[0].desc = 1;
        outs[0].name = "/dev/stdout";
        nouts = 1;
    } else {
        int k = 0;
        for (int c = zvm_channel_next("/dev/out/", -1); c >= 0; c = zvm_channel_next("/dev/out/", c)) {
            outs[k].desc = c;
            outs[k++].name = MANIFEST->channels[c].name;
        }
    }
    /* An eighth of the heap for output buffers, 4 KiB to 1 MiB each. */
    size = MANIFEST->heap_size / 8 / (uint64_t)nouts;
    size = size < 4096 ? 4096 : size > (1 << 20) ? (1 << 20) : size;
    for (int64_t k = 0; k < nouts; k++) {
        outs[k].buf = heap_take(WHO, size);
        outs[k].size = size;
        outs[k].used = 0;
    }
}

int main(void)
{
    uint64_t heap = MANIFEST->heap_size;
    uint64_t read_size = heap / 8 < (1 << 20) ? heap / 8 : (1 << 20);
    unsigned char *buf;
    int64_t total = 0;
    int in_word = 0; /* the last read ended inside a word (collected by extend_part) */
    uint64_t h = FNV_OFFSET;

    open_outputs();
    buf = heap_take(WHO, read_size);
    if (table_init(&table, heap_rest()) != 0) {
        say(WHO, "Memory is too small for the word table; give the map group more memory");
        return 2;
    }

    for (;;) {
        int64_t n = zvm_pread(0, buf, (int64_t)read_size, 0);
        if (n < 0) {
            say_failed(WHO, "read from ", "/dev/stdin", n);
            return 1;
        }
        if (n == 0)
            break;
        if (total == 0 && is_separator(buf[0]))
            count_word(buf, 0, FNV_OFFSET); /* tr's leading empty line */
        total += n;

        uint64_t i = 0, end = (uint64_t)n;
        while (i < end) {
            if (!in_word) {
                while (i < end && is_separator(buf[i]))
                    i++;
                if (i == end)
                    break;
                h = FNV_OFFSET;
            }
            uint64_t start = i;
            while (i < end && !is_separator(buf[i]))
                h = fnv_step(h, buf[i++]);
            if (i == end) {
                /* The word may go on in the next read: collect it. */
                extend_part(buf + start, i - start);
                in_word = 1;
            } else if (in_word) {
                extend_part(buf + start, i - start);
                count_part(h);
                in_word = 0;
            } else {
                count_word(buf + start, i - start, h);
            }
        }
    }
    if (in_word)
        count_part(h); /* a last word without a newline after it */
    send_counts();
    return 0;
}
