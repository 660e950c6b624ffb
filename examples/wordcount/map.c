/*
 * map.c - the map guest of examples/wordcount: counts the words of its part of the
 * input and sends each word's count to the reducer that owns the word.
 *
 * Input: /dev/stdin, streamed in reads of up to 1 MiB; memory holds the distinct
 * words, never the input. Words are as in words.h; as `tr -s ' ' '\n'` does, an input
 * that starts with a space or a newline also has one empty word (tr's output then
 * starts with an empty line, which `uniq -c` counts). A read is scanned 8 bytes at a
 * time: one load finds where a word of up to 7 bytes ends and gives its hash and key.
 * Words are counted in batches of 32, each one's table slot prefetched when the word is
 * found, so that the cache misses of a batch overlap (the slots of 100,000 words take
 * 6 MiB, more than a core's cache): with the 8-byte scan, that made the map about twice
 * as fast on 1 GiB of text (orchestrator/benches/wordcount.rs).
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
        uint64_t h = word_hash(table.store + s->off, s->len);
        struct out *o = &outs[((h >> 32) * (uint64_t)nouts) >> 32];
        char *c = format_count(num, s->count, 0);
        int64_t r = out_line(o, c, (uint64_t)(num + sizeof num - c), table.store + s->off, s->len);
        if (r < 0) {
            zvm_say_failed(WHO, "write to ", o->name, r);
            zvm_exit(1);
        }
    }
    for (int64_t k = 0; k < nouts; k++) {
        int64_t r = out_flush(&outs[k]);
        if (r < 0) {
            zvm_say_failed(WHO, "write to ", outs[k].name, r);
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

/* Counts one occurrence of the word w[0..len), hash h, key k. */
static void count_word(const unsigned char *w, uint64_t len, uint64_t h, uint64_t k)
{
    if (table_add(&table, w, len, h, k, 1) == 0)
        return;
    send_counts();
    if (table_add(&table, w, len, h, k, 1) != 0)
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

/* Counts one occurrence of the word collected by extend_part. */
static void count_part(void)
{
    if (table_add_part(&table, 1) == 0)
        return;
    send_counts();
    if (table_add_part(&table, 1) != 0)
        too_long();
}

/* Words found in a read, counted a batch at a time: each one's slot is prefetched when
 * it is found, so the cache misses of a batch overlap instead of following each other. */
#define BATCH 32
static struct {
    const unsigned char *w;
    uint64_t len, h, k;
} batch[BATCH];
static int nbatch;

static void count_batch(void)
{
    for (int b = 0; b < nbatch; b++)
        count_word(batch[b].w, batch[b].len, batch[b].h, batch[b].k);
    nbatch = 0;
}

static inline void queue_word(const unsigned char *w, uint64_t len, uint64_t h, uint64_t k)
{
    __builtin_prefetch(&table.slots[slot_index(h, table.nslots)]);
    batch[nbatch].w = w;
    batch[nbatch].len = len;
    batch[nbatch].h = h;
    batch[nbatch].k = k;
    if (++nbatch == BATCH)
        count_batch();
}

#define ONES 0x0101010101010101ULL

/* The high bit of each byte of x that is a space or a newline, and maybe of bytes after
 * the first such byte (a borrow can carry past it); so the lowest bit set, if any, marks
 * the first separator exactly. */
static inline uint64_t separators(uint64_t x)
{
    uint64_t s = x ^ (ONES * ' '), n = x ^ (ONES * '\n');
    return (((s - ONES) & ~s) | ((n - ONES) & ~n)) & (ONES * 0x80);
}

/* The length of the word starting at p (p[0] is not a separator, and a separator
 * follows it within the buffer), 8 bytes at a time, with its hash and key: the same as
 * word_hash and word_key give. Reads up to 7 bytes past the separator. */
static inline uint64_t scan_word(const unsigned char *p, uint64_t *hash, uint64_t *key)
{
    uint64_t x = load8(p), m = separators(x), len, h;

    if (m) { /* up to 7 bytes: most words */
        len = (uint64_t)__builtin_ctzll(m) >> 3;
        x &= ~0ULL >> (64 - 8 * len);
        *key = __builtin_bswap64(x);
        *hash = hash_finish(hash_chunk(HASH_SEED, x), len);
        return len;
    }
    *key = __builtin_bswap64(x);
    h = hash_chunk(HASH_SEED, x);
    for (len = 8;; len += 8) {
        x = load8(p + len);
        m = separators(x);
        if (m) {
            uint64_t n = (uint64_t)__builtin_ctzll(m) >> 3;
            if (n) {
                h = hash_chunk(h, x & (~0ULL >> (64 - 8 * n)));
                len += n;
            }
            break;
        }
        h = hash_chunk(h, x);
    }
    *hash = hash_finish(h, len);
    return len;
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

    open_outputs();
    /* 8 bytes more: a newline after the data read, and what scan_word reads past it. */
    buf = heap_take(WHO, read_size + 8);
    if (table_init(&table, heap_rest()) != 0) {
        say(WHO, "Memory is too small for the word table; give the map group more memory");
        return 2;
    }

    for (;;) {
        int64_t n = zvm_pread(0, buf, (int64_t)read_size, 0);
        if (n < 0) {
            zvm_say_failed(WHO, "read from ", "/dev/stdin", n);
            return 1;
        }
        if (n == 0)
            break;
        if (total == 0 && is_separator(buf[0]))
            count_word(buf, 0, word_hash(buf, 0), 0); /* tr's leading empty line */
        total += n;

        uint64_t i = 0, end = (uint64_t)n;
        buf[end] = '\n'; /* every word ends within the buffer */
        if (in_word) {
            /* The rest of the word the last read ended in. */
            while (!is_separator(buf[i]))
                i++;
            extend_part(buf, i);
            if (i == end)
                continue;
            count_part();
            in_word = 0;
        }
        for (;;) {
            while (i < end && is_separator(buf[i]))
                i++;
            if (i == end)
                break;
            uint64_t h, k, len = scan_word(buf + i, &h, &k);
            if (i + len == end) {
                /* The word may go on in the next read: collect it, after the batch
                 * (new words go where the part is collected). */
                count_batch();
                extend_part(buf + i, len);
                in_word = 1;
                break;
            }
            queue_word(buf + i, len, h, k);
            i += len;
        }
        count_batch(); /* before the next read overwrites buf */
    }
    if (in_word)
        count_part(); /* a last word without a newline after it */
    send_counts();
    return 0;
}
