/* pack.c: a streaming scanner over a whole git pack, from gitformat-pack(5).
 *
 * Layout: "PACK", version (2 or 3), object count (all 32-bit big endian); entries; a
 * 20-byte SHA-1 of everything before it. An entry header is a size varint whose first
 * byte holds the kind in bits 4-6 and the low 4 size bits, continued 7 bits at a time;
 * an ofs-delta then has the distance back to its base in git's "offset encoding"
 * (n = ((n + 1) << 7) | next), a ref-delta the base's 20-byte id; then a zlib stream.
 *
 * Rules:
 * - Input may arrive in any chunking; the result is the same. Between feeds only the
 *   parser state is kept (the header is parsed byte by byte), one persistent z_stream,
 *   one 64 KiB inflate buffer, and one offset per finished entry (to check ofs-deltas).
 * - Every entry is inflated to find where its zlib stream ends and to check its size;
 *   output never exceeds the declared size by more than one byte before it is refused.
 * - The same limits as the Python twin: size varint at most 9 bytes (< 2^60), an
 *   ofs-delta base must be the start of an earlier entry. Any violation kills the scanner.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "native.h"
#include "sha1dc.h"

#define INFLATE_CHUNK (64u * 1024u)

enum { ST_HEADER, ST_EHDR, ST_DATA, ST_TRAILER, ST_DONE, ST_FAILED };
enum { P_FIRST, P_SIZE, P_OFS_FIRST, P_OFS, P_REF };

struct gs_scanner {
    int state;
    uint64_t max_size;
    uint64_t pos;             /* pack offset of the next byte */
    uint8_t buf[20];          /* partial pack header or trailer */
    size_t buflen;
    int64_t count;            /* -1 until known */
    uint64_t done;
    gs_sha1_ctx pack_sha;
    uint64_t *starts;         /* offsets of finished entries, increasing */
    size_t nstarts, capstarts;
    /* entry being read */
    gs_entry cur;
    int phase;
    unsigned shift;
    uint64_t ofs;
    unsigned refn;
    uint64_t inflated;
    gs_sha1dc_ctx obj_sha; /* object ids refuse SHA-1 collision attacks (sha1dc.c) */
    z_stream zs;
    int zinit;
    uint8_t *outbuf;
    char err[200];
};

gs_scanner *gs_scanner_new(uint64_t max_object_size) {
    gs_scanner *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->outbuf = malloc(INFLATE_CHUNK);
    if (!s->outbuf) {
        free(s);
        return NULL;
    }
    s->state = ST_HEADER;
    s->max_size = max_object_size;
    s->count = -1;
    gs_sha1_init(&s->pack_sha);
    if (inflateInit(&s->zs) != Z_OK) {
        free(s->outbuf);
        free(s);
        return NULL;
    }
    s->zinit = 1;
    return s;
}

void gs_scanner_free(gs_scanner *s) {
    if (!s)
        return;
    if (s->zinit)
        inflateEnd(&s->zs);
    free(s->outbuf);
    free(s->starts);
    free(s);
}

const char *gs_scanner_error(const gs_scanner *s) { return s->err; }

int64_t gs_scanner_object_count(const gs_scanner *s) { return s->count; }

static int fail(gs_scanner *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
    s->state = ST_FAILED;
    return -1;
}

/* Bytes [p, p+n) of the pack are consumed as part of the current entry. */
static void account(gs_scanner *s, const uint8_t *p, size_t n) {
    while (n) {
        uInt k = n > 0x40000000u ? 0x40000000u : (uInt)n;
        s->cur.crc32 = (uint32_t)crc32(s->cur.crc32, p, k);
        gs_sha1_update(&s->pack_sha, p, k);
        s->pos += k;
        p += k;
        n -= k;
    }
}

static int is_entry_start(const gs_scanner *s, uint64_t off) {
    size_t lo = 0, hi = s->nstarts;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->starts[mid] == off)
            return 1;
        if (s->starts[mid] < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

static int header_done(gs_scanner *s) {
    gs_entry *e = &s->cur;
    if (e->kind == 6) {
        uint64_t base = e->offset - s->ofs; /* s->ofs < e->offset was checked */
        if (!is_entry_start(s, base))
            return fail(s, "entry at %llu: ofs-delta base %llu is not an earlier entry",
                        (unsigned long long)e->offset, (unsigned long long)base);
        e->base_offset = (int64_t)base;
    }
    if (e->size > s->max_size)
        return fail(s, "entry at %llu: size %llu exceeds limit %llu", (unsigned long long)e->offset,
                    (unsigned long long)e->size, (unsigned long long)s->max_size);
    if (inflateReset(&s->zs) != Z_OK)
        return fail(s, "entry at %llu: zlib reset failed", (unsigned long long)e->offset);
    s->inflated = 0;
    e->has_oid = e->kind <= 4;
    if (e->has_oid) {
        uint8_t hdr[32];
        int n = gs_object_header(e->kind, e->size, hdr);
        gs_sha1dc_init(&s->obj_sha);
        gs_sha1dc_update(&s->obj_sha, hdr, (size_t)n);
    }
    s->state = ST_DATA;
    return 0;
}

/* Parses entry header bytes one at a time; returns bytes used or -1. */
static long feed_header(gs_scanner *s, const uint8_t *p, size_t n) {
    gs_entry *e = &s->cur;
    size_t i = 0;
    while (i < n && s->state == ST_EHDR) {
        uint8_t c = p[i++];
        e->header_len++;
        switch (s->phase) {
        case P_FIRST:
            e->kind = (c >> 4) & 7;
            if (e->kind == 0 || e->kind == 5)
                return fail(s, "entry at %llu: invalid object type %d", (unsigned long long)e->offset,
                            e->kind);
            e->size = c & 0x0f;
            s->shift = 4;
            goto after_size_byte;
        case P_SIZE:
            e->size |= (uint64_t)(c & 0x7f) << s->shift;
            s->shift += 7;
        after_size_byte:
            if (c & 0x80) {
                if (s->shift >= 60)
                    return fail(s, "entry at %llu: size varint too long", (unsigned long long)e->offset);
                s->phase = P_SIZE;
            } else if (e->kind == 6) {
                s->phase = P_OFS_FIRST;
            } else if (e->kind == 7) {
                s->phase = P_REF;
                s->refn = 0;
            } else if (header_done(s)) {
                return -1;
            }
            break;
        case P_OFS_FIRST:
        case P_OFS:
            if (s->phase == P_OFS_FIRST)
                s->ofs = c & 0x7f;
            else
                s->ofs = ((s->ofs + 1) << 7) | (c & 0x7f);
            if (s->ofs >= e->offset || s->ofs >= ((uint64_t)1 << 56))
                return fail(s, "entry at %llu: ofs-delta base before the pack start",
                            (unsigned long long)e->offset);
            s->phase = P_OFS;
            if (!(c & 0x80) && header_done(s))
                return -1;
            break;
        case P_REF:
            e->base_oid[s->refn++] = c;
            if (s->refn == 20) {
                e->has_base_oid = 1;
                if (header_done(s))
                    return -1;
            }
            break;
        }
    }
    account(s, p, i);
    return (long)i;
}

static int end_entry(gs_scanner *s, gs_entry *out) {
    gs_entry *e = &s->cur;
    if (s->inflated != e->size)
        return fail(s, "entry at %llu: inflated to %llu bytes, declared %llu",
                    (unsigned long long)e->offset, (unsigned long long)s->inflated,
                    (unsigned long long)e->size);
    if (e->has_oid && gs_sha1dc_digest(&s->obj_sha, e->oid))
        return fail(s, "entry at %llu: SHA-1 collision attack detected", (unsigned long long)e->offset);
    e->length = s->pos - e->offset;
    if (s->nstarts == s->capstarts) {
        size_t ncap = s->capstarts ? s->capstarts * 2 : 1024;
        uint64_t *ns = realloc(s->starts, ncap * sizeof *ns);
        if (!ns)
            return fail(s, "out of memory");
        s->starts = ns;
        s->capstarts = ncap;
    }
    s->starts[s->nstarts++] = e->offset;
    *out = *e;
    s->done++;
    s->state = s->done == (uint64_t)s->count ? ST_TRAILER : ST_EHDR;
    return 0;
}

static void begin_entry(gs_scanner *s) {
    memset(&s->cur, 0, sizeof s->cur);
    s->cur.offset = s->pos;
    s->cur.base_offset = -1;
    s->phase = P_FIRST;
}

/* Inflates from p; returns bytes used, sets *finished when the zlib stream ended. */
static long feed_data(gs_scanner *s, const uint8_t *p, size_t n, int *finished) {
    gs_entry *e = &s->cur;
    size_t used_total = 0;
    *finished = 0;
    for (;;) {
        uint64_t room = e->size - s->inflated + 1; /* one byte over proves an overflow */
        uInt cap = room < INFLATE_CHUNK ? (uInt)room : INFLATE_CHUNK;
        uInt in = (n - used_total) > 0x40000000u ? 0x40000000u : (uInt)(n - used_total);
        size_t produced, used;
        int ret;
        s->zs.next_in = (Bytef *)(p + used_total);
        s->zs.avail_in = in;
        s->zs.next_out = s->outbuf;
        s->zs.avail_out = cap;
        ret = inflate(&s->zs, Z_NO_FLUSH);
        used = in - s->zs.avail_in;
        produced = cap - s->zs.avail_out;
        account(s, p + used_total, used);
        used_total += used;
        if (ret != Z_OK && ret != Z_STREAM_END && ret != Z_BUF_ERROR)
            return fail(s, "entry at %llu: bad zlib data (%s)", (unsigned long long)e->offset,
                        s->zs.msg ? s->zs.msg : "error");
        s->inflated += produced;
        if (s->inflated > e->size)
            return fail(s, "entry at %llu: inflates past its declared size %llu",
                        (unsigned long long)e->offset, (unsigned long long)e->size);
        if (e->has_oid && produced)
            gs_sha1dc_update(&s->obj_sha, s->outbuf, produced);
        if (ret == Z_STREAM_END) {
            *finished = 1;
            return (long)used_total;
        }
        if (used_total == n && produced < cap)
            return (long)used_total; /* input exhausted, nothing pending: need more */
        if (!used && !produced)
            return fail(s, "entry at %llu: zlib made no progress", (unsigned long long)e->offset);
    }
}

int gs_scanner_feed(gs_scanner *s, const void *input, size_t len, size_t *consumed,
                    gs_entry *out, size_t cap, size_t *nout) {
    const uint8_t *data = input;
    size_t i = 0;
    *nout = 0;
    *consumed = 0;
    if (s->state == ST_FAILED) {
        if (!s->err[0])
            snprintf(s->err, sizeof s->err, "pack scanner already failed");
        return -1;
    }
    if (s->state == ST_DONE)
        return fail(s, "pack scanner already finished");
    while (i < len && *nout < cap) {
        switch (s->state) {
        case ST_HEADER: {
            size_t take = 12 - s->buflen;
            if (take > len - i)
                take = len - i;
            memcpy(s->buf + s->buflen, data + i, take);
            gs_sha1_update(&s->pack_sha, data + i, take);
            s->buflen += take;
            s->pos += take;
            i += take;
            if (s->buflen == 12) {
                uint32_t version, count;
                if (memcmp(s->buf, "PACK", 4) != 0)
                    return fail(s, "not a pack: bad signature");
                version = ((uint32_t)s->buf[4] << 24) | ((uint32_t)s->buf[5] << 16) |
                          ((uint32_t)s->buf[6] << 8) | s->buf[7];
                if (version != 2 && version != 3)
                    return fail(s, "unsupported pack version %u", (unsigned)version);
                count = ((uint32_t)s->buf[8] << 24) | ((uint32_t)s->buf[9] << 16) |
                        ((uint32_t)s->buf[10] << 8) | s->buf[11];
                s->count = count;
                s->buflen = 0;
                s->state = count ? ST_EHDR : ST_TRAILER;
                if (count)
                    begin_entry(s);
            }
            break;
        }
        case ST_EHDR: {
            long r = feed_header(s, data + i, len - i);
            if (r < 0)
                return -1;
            i += (size_t)r;
            break;
        }
        case ST_DATA: {
            int finished;
            long r = feed_data(s, data + i, len - i, &finished);
            if (r < 0)
                return -1;
            i += (size_t)r;
            if (finished) {
                if (end_entry(s, &out[*nout]))
                    return -1;
                (*nout)++;
                if (s->state == ST_EHDR)
                    begin_entry(s);
            }
            break;
        }
        case ST_TRAILER:
            if (len - i > 20 - s->buflen) {
                *consumed = i;
                return fail(s, "data after the pack trailer at offset %llu",
                            (unsigned long long)(s->pos + 20));
            }
            memcpy(s->buf + s->buflen, data + i, len - i);
            s->buflen += len - i;
            i = len;
            break;
        default:
            return fail(s, "pack scanner in a bad state");
        }
    }
    *consumed = i;
    return 0;
}

int gs_scanner_finish(gs_scanner *s, uint8_t out[20]) {
    uint8_t want[20];
    if (s->state == ST_FAILED) {
        if (!s->err[0])
            snprintf(s->err, sizeof s->err, "pack scanner already failed");
        return -1;
    }
    if (s->state == ST_DONE)
        return fail(s, "pack scanner already finished");
    if (s->state != ST_TRAILER || s->buflen != 20)
        return fail(s, "pack truncated at offset %llu", (unsigned long long)(s->pos + s->buflen));
    gs_sha1_digest(&s->pack_sha, want);
    if (memcmp(want, s->buf, 20) != 0)
        return fail(s, "pack checksum mismatch");
    memcpy(out, s->buf, 20);
    s->state = ST_DONE;
    return 0;
}
