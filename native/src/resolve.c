/* resolve.c: a pushed pack from scan to resolved objects and checked links, in C.
 *
 * The resolver owns a gs_scanner (pack.c): every piece of the pack goes through it, and
 * each finished entry becomes one fixed-size record of the entry table (56 bytes: offset,
 * sizes, crc, links to base / children, cache pointer; sized from the pack header's count,
 * at most 4M entries up front). Object ids live once each in a
 * record table (36 bytes per distinct id: the id, the entry holding it, the first
 * ref-delta waiting on it, the type and first source of a link naming it) indexed by an
 * open-addressing hash of 32-bit slots. Memory is therefore bounded by the pack's entry
 * count plus the distinct ids the pack names, never by the pack's size: pack bytes are
 * read back with pread() from a file the caller wrote (the pack is never in memory).
 *
 * Resolution (the order is part of the contract; native/resolve_pure.py does the same):
 * - Roots are the whole entries in pack order. Resolving an object emits its row, then
 *   takes its ofs-delta children (by base entry) and the ref-delta children waiting on its
 *   id (by record), and pushes them on one LIFO stack: depth first, lowest offset first.
 * - A delta is inflated, checked against max_object_size, applied to its base, and hashed
 *   with SHA-1DC (sha1dc.c; a collision attack is an error). Only objects that have
 *   children are kept, in a byte-bounded LRU; an evicted base is rebuilt from its nearest
 *   cached ancestor (or its whole root, re-read from the pack).
 * - Trees are parsed here (gs_tree_links); commits and tags (and a tree the C parser
 *   refuses) are handed to the caller, which parses them and gives back their links.
 * - A link (source entry, target id, type) sets the target record's wanted type once;
 *   a different type later is remembered in a small conflict list. After resolution the
 *   caller asks for a link whose target is here with another type, the links whose targets
 *   are not in the pack (to check against the store), and the pack's unnamed objects.
 * - Thin packs: the caller lists the bases still awaited, and adds each one it has
 *   (add_base); its data stays pinned while its subtree resolves.
 * Nothing here touches Python; cffi calls these with the GIL released. One thread at a
 * time per resolver.
 */
#define _XOPEN_SOURCE 700
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "native.h"
#include "sha1dc.h"

#define NONE 0xffffffffu
#define F_EXT 1u  /* a base from the store (thin pack), not a pack entry */
#define SCAN_BATCH 256
#define MAX_CONFLICTS 16

typedef struct citem {
    struct citem *prev, *next;
    uint32_t idx;
    int pinned;
    size_t len;
    uint8_t data[];
} citem;

typedef struct {
    uint64_t offset;
    uint64_t size;   /* declared inflated size of the entry (the delta's size for deltas) */
    uint32_t length; /* header + compressed bytes (an entry of 4 GiB or more is refused) */
    uint32_t crc32;
    uint32_t parent;   /* base entry, once known; an unresolved ref-delta: its base's record */
    uint32_t child;    /* first ofs-delta child; siblings chain through next */
    uint32_t next;
    uint32_t rec;      /* record of its id, once resolved (whole entries: from the scan) */
    uint32_t depth;
    uint8_t hlen, kind, type, flags;
    citem *cache;
} ent; /* 56 bytes on LP64 */

typedef struct {
    uint8_t oid[20];
    uint32_t entry; /* resolved entry with this id */
    uint32_t ref;   /* first unresolved ref-delta on this id (chain through ent.next) */
    uint32_t src;   /* entry of the first object naming it */
    uint8_t want;   /* type it is named as; 0 = not named */
    uint8_t pad[3];
} rec;

typedef struct {
    uint32_t src, rec;
    uint8_t want;
} conflict;

struct gs_resolver {
    gs_scanner *scan;
    gs_entry *batch;
    ent *ents;
    uint32_t nents, capents, npack;
    rec *recs;
    uint32_t nrecs, caprecs;
    uint32_t *slots;
    uint64_t nslots; /* power of two */
    uint64_t seed;
    conflict conflicts[MAX_CONFLICTS];
    unsigned nconflicts;
    uint64_t deltas, deltas_done;
    uint64_t max_size;
    int fd;
    uint64_t spooled; /* bytes of the pack written to fd by feed */
    /* walk */
    uint32_t *stack;
    uint32_t nstack, capstack;
    uint32_t next_root;
    citem *lru_head, *lru_tail; /* head = most recent */
    uint64_t cache_bytes, cache_max;
    citem *held;   /* result handed out last; freed at the next call unless cached */
    citem *pinned; /* external base being walked */
    uint8_t *zbuf;
    size_t zcap;
    uint8_t *tbuf;
    size_t tcap;
    char err[240];
};

static int rfail(gs_resolver *r, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
    return code;
}

const char *gs_resolver_error(const gs_resolver *r) { return r->err; }

static int is_cached(const gs_resolver *r, const citem *c) { return c->prev || c->next || r->lru_head == c; }

gs_resolver *gs_resolver_new(uint64_t max_object_size, uint64_t cache_bytes) {
    gs_resolver *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->scan = gs_scanner_new(max_object_size);
    r->batch = malloc(SCAN_BATCH * sizeof *r->batch);
    r->nslots = 1024;
    r->slots = calloc(r->nslots, sizeof *r->slots);
    if (!r->scan || !r->batch || !r->slots) {
        gs_resolver_free(r);
        return NULL;
    }
    r->max_size = max_object_size;
    r->cache_max = cache_bytes;
    r->fd = -1;
    /* a per-resolver key: ids named by trees are chosen by the pusher */
    r->seed = (uint64_t)(uintptr_t)r ^ ((uint64_t)time(NULL) << 32) ^ (uint64_t)clock() ^
              0x9e3779b97f4a7c15ull;
    return r;
}

void gs_resolver_free(gs_resolver *r) {
    if (!r)
        return;
    gs_scanner_free(r->scan);
    if (r->held && !is_cached(r, r->held))
        free(r->held);
    for (citem *c = r->lru_head, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    free(r->batch);
    free(r->ents);
    free(r->recs);
    free(r->slots);
    free(r->stack);
    free(r->zbuf);
    free(r->tbuf);
    free(r);
}

/* ---- the id records ---- */

static uint64_t mix(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

static uint64_t hash_oid(const gs_resolver *r, const uint8_t *oid) {
    uint64_t a, b;
    uint32_t c;
    memcpy(&a, oid, 8);
    memcpy(&b, oid + 8, 8);
    memcpy(&c, oid + 16, 4);
    return mix(mix(a ^ r->seed) ^ b ^ ((uint64_t)c << 17));
}

static int grow_slots(gs_resolver *r) {
    uint64_t n = r->nslots * 2;
    uint32_t *s = calloc(n, sizeof *s);
    if (!s)
        return -1;
    for (uint32_t i = 0; i < r->nrecs; i++) {
        uint64_t h = hash_oid(r, r->recs[i].oid) & (n - 1);
        while (s[h])
            h = (h + 1) & (n - 1);
        s[h] = i + 1;
    }
    free(r->slots);
    r->slots = s;
    r->nslots = n;
    return 0;
}

static uint32_t find_rec(const gs_resolver *r, const uint8_t *oid) {
    uint64_t h = hash_oid(r, oid) & (r->nslots - 1);
    for (;;) {
        uint32_t s = r->slots[h];
        if (!s)
            return NONE;
        if (memcmp(r->recs[s - 1].oid, oid, 20) == 0)
            return s - 1;
        h = (h + 1) & (r->nslots - 1);
    }
}

/* The record of oid, created when absent; NONE when out of memory. */
static uint32_t get_rec(gs_resolver *r, const uint8_t *oid) {
    uint64_t h = hash_oid(r, oid) & (r->nslots - 1);
    for (;;) {
        uint32_t s = r->slots[h];
        if (!s)
            break;
        if (memcmp(r->recs[s - 1].oid, oid, 20) == 0)
            return s - 1;
        h = (h + 1) & (r->nslots - 1);
    }
    if (r->nrecs >= 0x7fffffffu)
        return NONE;
    if (r->nrecs == r->caprecs) {
        uint32_t ncap = r->caprecs ? r->caprecs * 2 : 1024;
        rec *nr = realloc(r->recs, (size_t)ncap * sizeof *nr);
        if (!nr)
            return NONE;
        r->recs = nr;
        r->caprecs = ncap;
    }
    rec *x = &r->recs[r->nrecs];
    memcpy(x->oid, oid, 20);
    x->entry = x->ref = x->src = NONE;
    x->want = 0;
    r->slots[h] = ++r->nrecs;
    if ((uint64_t)r->nrecs * 2 > r->nslots && grow_slots(r))
        return NONE;
    return r->nrecs - 1;
}

/* ---- scanning ---- */

static uint32_t entry_at(const gs_resolver *r, uint64_t offset) {
    uint32_t lo = 0, hi = r->npack;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (r->ents[mid].offset == offset)
            return mid;
        if (r->ents[mid].offset < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NONE;
}

static int new_ent(gs_resolver *r) {
    if (r->nents >= 0x7fffffffu)
        return -1;
    if (r->nents == r->capents) {
        uint32_t ncap = r->capents ? r->capents * 2 : 1024;
        ent *ne = realloc(r->ents, (size_t)ncap * sizeof *ne);
        if (!ne)
            return -1;
        r->ents = ne;
        r->capents = ncap;
    }
    memset(&r->ents[r->nents], 0, sizeof(ent));
    r->ents[r->nents].parent = r->ents[r->nents].child = r->ents[r->nents].next = NONE;
    r->ents[r->nents].rec = NONE;
    r->nents++;
    return 0;
}

static int add_entry(gs_resolver *r, const gs_entry *e) {
    uint32_t i = r->nents;
    ent *x;
    if (new_ent(r))
        return rfail(r, GS_RES_NOMEM, "out of memory");
    if (e->length > 0xffffffffu)
        return rfail(r, GS_RES_NOMEM, "entry at pack offset %llu is too large", (unsigned long long)e->offset);
    x = &r->ents[i];
    x->offset = e->offset;
    x->size = e->size;
    x->length = (uint32_t)e->length;
    x->crc32 = e->crc32;
    x->hlen = (uint8_t)e->header_len;
    x->kind = (uint8_t)e->kind;
    r->npack = r->nents;
    if (e->kind <= 4) {
        uint32_t k = get_rec(r, e->oid);
        if (k == NONE)
            return rfail(r, GS_RES_NOMEM, "out of memory");
        x = &r->ents[i];
        x->rec = k;
        x->type = (uint8_t)e->kind;
    } else if (e->kind == 6) {
        uint32_t b = entry_at(r, (uint64_t)e->base_offset);
        if (b == NONE) /* the scanner checked this */
            return rfail(r, GS_RES_FORMAT, "entry at %llu: ofs-delta base is not an entry",
                         (unsigned long long)e->offset);
        x->parent = b;
        x->next = r->ents[b].child;
        r->ents[b].child = i;
        r->deltas++;
    } else {
        uint32_t k = get_rec(r, e->base_oid);
        if (k == NONE)
            return rfail(r, GS_RES_NOMEM, "out of memory");
        x = &r->ents[i];
        x->parent = k; /* the base's record until it resolves */
        x->next = r->recs[k].ref;
        r->recs[k].ref = i;
        r->deltas++;
    }
    return 0;
}

/* Sizes the tables for the pack's declared entry count once it is known (at most
 * RESERVE_MAX entries: a hostile header cannot make us allocate more up front). */
#define RESERVE_MAX (1u << 22)
static int reserve(gs_resolver *r) {
    int64_t count = gs_scanner_object_count(r->scan);
    uint32_t want;
    if (count <= 0 || r->capents)
        return 0;
    want = count > RESERVE_MAX ? RESERVE_MAX : (uint32_t)count;
    r->ents = malloc((size_t)want * sizeof *r->ents);
    r->recs = malloc((size_t)want * sizeof *r->recs);
    if (!r->ents || !r->recs)
        return -1;
    r->capents = r->caprecs = want;
    while (r->nslots < 2 * (uint64_t)want)
        if (grow_slots(r))
            return -1;
    return 0;
}

int gs_resolver_feed(gs_resolver *r, const void *data, size_t len) {
    const uint8_t *p = data;
    size_t consumed, n;
    if (r->fd >= 0) { /* the spool: the pack's bytes, read back by the walk */
        const uint8_t *w = data;
        size_t left = len;
        while (left) {
            ssize_t put = pwrite(r->fd, w, left, (off_t)r->spooled);
            if (put <= 0)
                return rfail(r, GS_RES_IO, "cannot write the pack spool file");
            w += put;
            left -= (size_t)put;
            r->spooled += (uint64_t)put;
        }
    }
    while (len) {
        if (gs_scanner_feed(r->scan, p, len, &consumed, r->batch, SCAN_BATCH, &n))
            return rfail(r, GS_RES_FORMAT, "%s", gs_scanner_error(r->scan));
        if (!r->capents && reserve(r))
            return rfail(r, GS_RES_NOMEM, "out of memory");
        for (size_t k = 0; k < n; k++) {
            int rc = add_entry(r, &r->batch[k]);
            if (rc)
                return rc;
        }
        p += consumed;
        len -= consumed;
    }
    return 0;
}

int gs_resolver_finish(gs_resolver *r, uint8_t checksum[20]) {
    if (gs_scanner_finish(r->scan, checksum))
        return rfail(r, GS_RES_FORMAT, "%s", gs_scanner_error(r->scan));
    r->stack = malloc(((size_t)r->npack + 1) * sizeof *r->stack);
    r->capstack = r->npack + 1;
    if (!r->stack)
        return rfail(r, GS_RES_NOMEM, "out of memory");
    return 0;
}

uint64_t gs_resolver_entries(const gs_resolver *r) { return r->npack; }
uint64_t gs_resolver_deltas(const gs_resolver *r) { return r->deltas; }
uint64_t gs_resolver_deltas_done(const gs_resolver *r) { return r->deltas_done; }
void gs_resolver_set_fd(gs_resolver *r, int fd) { r->fd = fd; }

/* ---- the base cache ---- */

static void lru_unlink(gs_resolver *r, citem *c) {
    if (c->prev)
        c->prev->next = c->next;
    else
        r->lru_head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        r->lru_tail = c->prev;
    c->prev = c->next = NULL;
}

static void lru_front(gs_resolver *r, citem *c) {
    c->prev = NULL;
    c->next = r->lru_head;
    if (r->lru_head)
        r->lru_head->prev = c;
    r->lru_head = c;
    if (!r->lru_tail)
        r->lru_tail = c;
}

static void evict(gs_resolver *r) {
    citem *c = r->lru_tail;
    while (c && r->cache_bytes > r->cache_max) {
        citem *prev = c->prev;
        if (!c->pinned && c != r->held) {
            lru_unlink(r, c);
            r->cache_bytes -= c->len;
            r->ents[c->idx].cache = NULL;
            free(c);
        }
        c = prev;
    }
}

/* Keeps c (the content of entry c->idx) in the LRU; a too-large one is not kept. */
static void cache_put(gs_resolver *r, citem *c) {
    if (c->len > r->cache_max && !c->pinned)
        return;
    r->ents[c->idx].cache = c;
    lru_front(r, c);
    r->cache_bytes += c->len;
    evict(r);
}

static void release(gs_resolver *r, citem *c) {
    if (c && !is_cached(r, c) && c != r->pinned)
        free(c);
}

/* ---- pack reading ---- */

static int read_at(gs_resolver *r, uint64_t off, uint8_t *buf, size_t n) {
    while (n) {
        ssize_t got = pread(r->fd, buf, n, (off_t)off);
        if (got <= 0)
            return -1;
        buf += got;
        n -= (size_t)got;
        off += (uint64_t)got;
    }
    return 0;
}

/* The inflated data of pack entry i, in a new citem (caller owns it); NULL with r->err set. */
static citem *inflate_entry(gs_resolver *r, uint32_t i, int *code) {
    ent *e = &r->ents[i];
    size_t clen = (size_t)(e->length - e->hlen);
    citem *c;
    z_stream zs;
    int ret;
    if (e->size >= 0xffffffffu) {
        *code = rfail(r, GS_RES_NOMEM, "entry at pack offset %llu is too large", (unsigned long long)e->offset);
        return NULL;
    }
    if (clen > r->zcap) {
        uint8_t *nb = realloc(r->zbuf, clen);
        if (!nb) {
            *code = rfail(r, GS_RES_NOMEM, "out of memory");
            return NULL;
        }
        r->zbuf = nb;
        r->zcap = clen;
    }
    if (read_at(r, e->offset + e->hlen, r->zbuf, clen)) {
        *code = rfail(r, GS_RES_IO, "cannot read pack entry at offset %llu", (unsigned long long)e->offset);
        return NULL;
    }
    c = malloc(sizeof *c + (size_t)e->size + 1);
    if (!c) {
        *code = rfail(r, GS_RES_NOMEM, "out of memory");
        return NULL;
    }
    memset(c, 0, sizeof *c);
    c->idx = i;
    c->len = (size_t)e->size;
    memset(&zs, 0, sizeof zs);
    if (inflateInit(&zs) != Z_OK) {
        free(c);
        *code = rfail(r, GS_RES_NOMEM, "out of memory");
        return NULL;
    }
    zs.next_in = r->zbuf;
    zs.avail_in = (uInt)clen;
    zs.next_out = c->data;
    zs.avail_out = (uInt)c->len + 1; /* one byte over proves an overflow */
    ret = inflate(&zs, Z_FINISH);
    if (ret != Z_STREAM_END || zs.total_out != c->len) {
        inflateEnd(&zs);
        free(c);
        *code = rfail(r, GS_RES_FORMAT, "entry at pack offset %llu: bad zlib data",
                      (unsigned long long)e->offset);
        return NULL;
    }
    inflateEnd(&zs);
    return c;
}

/* ---- delta application ---- */

/* Applies delta (entry i) to base; a new citem, or NULL with *code set. */
static citem *apply_delta(gs_resolver *r, uint32_t i, const citem *base, const citem *delta, int *code) {
    uint64_t bsize, rsize;
    size_t hl;
    unsigned long long off = (unsigned long long)r->ents[i].offset;
    int rc = gs_delta_header(delta->data, delta->len, &bsize, &rsize, &hl);
    citem *c;
    if (r->max_size != UINT64_MAX) {
        if (rc) {
            *code = rfail(r, GS_RES_CORRUPT, "delta at pack offset %llu is malformed: %s", off,
                          gs_delta_strerror(rc));
            return NULL;
        }
        if (rsize > r->max_size) {
            *code = rfail(r, GS_RES_LIMIT, "object of the delta at pack offset %llu: size %llu exceeds limit %llu",
                          off, (unsigned long long)rsize, (unsigned long long)r->max_size);
            return NULL;
        }
    }
    if (rc) {
        *code = rfail(r, GS_RES_CORRUPT, "delta at pack offset %llu does not apply: %s", off, gs_delta_strerror(rc));
        return NULL;
    }
    if (bsize != (uint64_t)base->len) {
        *code = rfail(r, GS_RES_CORRUPT, "delta at pack offset %llu does not apply: delta base size %llu != actual base size %llu",
                      off, (unsigned long long)bsize, (unsigned long long)base->len);
        return NULL;
    }
    {
        uint64_t per = base->len < 1 ? 1 : (base->len > 0xffffff ? 0xffffff : base->len);
        if (rsize > (uint64_t)(delta->len - hl) * per) {
            *code = rfail(r, GS_RES_CORRUPT,
                          "delta at pack offset %llu does not apply: delta result size %llu cannot be produced by this delta",
                          off, (unsigned long long)rsize);
            return NULL;
        }
    }
    if (rsize > (uint64_t)SIZE_MAX - sizeof(citem)) {
        *code = rfail(r, GS_RES_NOMEM, "out of memory");
        return NULL;
    }
    c = malloc(sizeof *c + (size_t)rsize);
    if (!c) {
        *code = rfail(r, GS_RES_NOMEM, "out of memory");
        return NULL;
    }
    memset(c, 0, sizeof *c);
    c->idx = i;
    c->len = (size_t)rsize;
    rc = gs_delta_apply(base->data, base->len, delta->data, delta->len, c->data, c->len);
    if (rc) {
        free(c);
        *code = rfail(r, GS_RES_CORRUPT, "delta at pack offset %llu does not apply: %s", off, gs_delta_strerror(rc));
        return NULL;
    }
    return c;
}

/* The content of resolved entry i: cached, or rebuilt from its nearest cached ancestor. */
static citem *content(gs_resolver *r, uint32_t i, int *code) {
    uint32_t path[64];
    uint32_t cur = i;
    size_t np = 0;
    citem *have;
    if (r->ents[i].cache) {
        lru_unlink(r, r->ents[i].cache);
        lru_front(r, r->ents[i].cache);
        return r->ents[i].cache;
    }
    /* walk up to a cached ancestor or a whole root, in pieces of 64 steps */
    for (;;) {
        while (!r->ents[cur].cache && r->ents[cur].kind >= 6 && np < 64) {
            path[np++] = cur;
            cur = r->ents[cur].parent;
        }
        if (np == 64 && !r->ents[cur].cache && r->ents[cur].kind >= 6) {
            /* a long chain: rebuild its upper part first (recursion depth <= chain/64) */
            have = content(r, cur, code);
            if (!have)
                return NULL;
        } else if (r->ents[cur].cache) {
            have = r->ents[cur].cache;
        } else {
            have = inflate_entry(r, cur, code);
            if (!have)
                return NULL;
            cache_put(r, have);
            if (!is_cached(r, have)) {
                /* too large to keep: use it once */
            }
        }
        break;
    }
    while (np) {
        uint32_t step = path[--np];
        citem *d = inflate_entry(r, step, code), *res;
        if (!d) {
            release(r, have);
            return NULL;
        }
        res = apply_delta(r, step, have, d, code);
        free(d);
        release(r, have);
        if (!res)
            return NULL;
        cache_put(r, res);
        have = res;
    }
    return have;
}

/* ---- the walk ---- */

static int add_link(gs_resolver *r, uint32_t src, const uint8_t *oid, uint8_t want) {
    uint32_t k = get_rec(r, oid);
    rec *x;
    if (k == NONE)
        return rfail(r, GS_RES_NOMEM, "out of memory");
    x = &r->recs[k];
    if (!x->want) {
        x->want = want;
        x->src = src;
    } else if (x->want != want && r->nconflicts < MAX_CONFLICTS) {
        conflict *c = &r->conflicts[r->nconflicts++];
        c->src = src;
        c->rec = k;
        c->want = want;
    }
    return 0;
}

int gs_resolver_add_links(gs_resolver *r, uint32_t src, const void *oids, const void *types, size_t n) {
    const uint8_t *o = oids, *t = types;
    for (size_t k = 0; k < n; k++) {
        int rc = add_link(r, src, o + 20 * k, t[k]);
        if (rc)
            return rc;
    }
    return 0;
}

/* Links of tree entry i from data; 1 when the C parser refuses it (the caller parses). */
static int tree_links(gs_resolver *r, uint32_t i, const citem *c, int *code) {
    size_t nt, nb, ep;
    if (c->len > r->tcap) {
        uint8_t *nbuf = realloc(r->tbuf, 2 * c->len);
        if (!nbuf) {
            *code = rfail(r, GS_RES_NOMEM, "out of memory");
            return -1;
        }
        r->tbuf = nbuf;
        r->tcap = c->len;
    }
    if (gs_tree_links(c->data, c->len, r->tbuf, &nt, r->tbuf + r->tcap, &nb, &ep))
        return 1;
    for (size_t k = 0; k < nt; k++)
        if ((*code = add_link(r, i, r->tbuf + 20 * k, 2)))
            return -1;
    for (size_t k = 0; k < nb; k++)
        if ((*code = add_link(r, i, r->tbuf + r->tcap + 20 * k, 3)))
            return -1;
    return 0;
}

/* Entry i is resolved with id record k: emit its row, queue its children. */
static void resolved(gs_resolver *r, uint32_t i, uint32_t k, uint64_t size, gs_resolved *row) {
    ent *e = &r->ents[i];
    rec *x = &r->recs[k];
    uint32_t c;
    e->rec = k;
    if (x->entry == NONE) {
        x->entry = i;
        for (c = x->ref; c != NONE;) {
            uint32_t nx = r->ents[c].next;
            r->ents[c].parent = i;
            r->stack[r->nstack++] = c;
            c = nx;
        }
        x->ref = NONE;
    }
    for (c = e->child; c != NONE; c = r->ents[c].next)
        r->stack[r->nstack++] = c;
    if (row) {
        memcpy(row->oid, x->oid, 20);
        row->type = e->type;
        row->kind = e->kind;
        row->size = size;
        row->offset = e->offset;
        row->length = e->length;
        row->header_len = e->hlen;
        row->crc32 = e->crc32;
        row->depth = e->depth;
        row->has_base = e->parent != NONE;
        if (row->has_base)
            memcpy(row->base, r->recs[r->ents[e->parent].rec].oid, 20);
    }
}

static int has_children(const gs_resolver *r, uint32_t mark) { return r->nstack > mark; }

int gs_resolver_next(gs_resolver *r, gs_resolved *out, size_t cap, size_t *nout, gs_parse *parse) {
    int code = 0;
    *nout = 0;
    if (r->held) {
        release(r, r->held);
        r->held = NULL;
    }
    while (*nout < cap) {
        uint32_t i, mark;
        ent *e;
        citem *data = NULL;
        if (!r->nstack) {
            if (r->pinned) { /* an external base's subtree is done */
                citem *p = r->pinned;
                r->pinned = NULL;
                if (is_cached(r, p)) {
                    lru_unlink(r, p);
                    r->cache_bytes -= p->len;
                }
                r->ents[p->idx].cache = NULL;
                free(p);
            }
            while (r->next_root < r->npack && r->ents[r->next_root].kind >= 6)
                r->next_root++;
            if (r->next_root >= r->npack)
                return 0;
            r->stack[r->nstack++] = r->next_root++;
        }
        i = r->stack[--r->nstack];
        e = &r->ents[i];
        mark = r->nstack;
        if (e->kind <= 4) {
            resolved(r, i, e->rec, e->size, &out[*nout]);
            (*nout)++;
            e = &r->ents[i];
            if (!has_children(r, mark) && e->type == 3)
                continue;
            data = inflate_entry(r, i, &code);
            if (!data)
                return code;
            if (has_children(r, mark))
                cache_put(r, data);
        } else {
            uint32_t p = e->parent;
            citem *base = content(r, p, &code), *delta;
            uint32_t k;
            uint8_t oid[20];
            if (!base)
                return code;
            base->pinned++;
            delta = inflate_entry(r, i, &code);
            if (!delta) {
                base->pinned--;
                release(r, base);
                return code;
            }
            data = apply_delta(r, i, base, delta, &code);
            free(delta);
            base->pinned--;
            e = &r->ents[i];
            e->type = r->ents[p].type;
            e->depth = r->ents[p].depth + 1;
            release(r, base);
            if (!data)
                return code;
            if (gs_sha1dc_object_id(e->type, data->data, data->len, oid) != 0) {
                char hex[41];
                for (int b = 0; b < 20; b++)
                    snprintf(hex + 2 * b, 3, "%02x", oid[b]);
                release(r, data);
                return rfail(r, GS_RES_CORRUPT,
                             "delta at pack offset %llu: SHA-1 collision attack detected (digest %s)",
                             (unsigned long long)e->offset, hex);
            }
            k = get_rec(r, oid);
            if (k == NONE) {
                release(r, data);
                return rfail(r, GS_RES_NOMEM, "out of memory");
            }
            resolved(r, i, k, data->len, &out[*nout]);
            (*nout)++;
            r->deltas_done++;
            e = &r->ents[i];
            if (has_children(r, mark))
                cache_put(r, data);
        }
        if (e->type != 3) {
            int t = e->type == 2 ? tree_links(r, i, data, &code) : 1;
            if (t < 0) {
                release(r, data);
                return code;
            }
            if (t > 0) {
                parse->index = i;
                parse->type = e->type;
                memcpy(parse->oid, r->recs[e->rec].oid, 20);
                parse->data = data->data;
                parse->len = data->len;
                r->held = data;
                return 1;
            }
        }
        release(r, data);
    }
    return 0;
}

/* ---- thin packs ---- */

size_t gs_resolver_pending_bases(const gs_resolver *r, uint8_t *out, size_t cap) {
    size_t n = 0;
    for (uint32_t i = 0; i < r->npack && n < cap; i++) {
        const ent *e = &r->ents[i];
        if (e->kind == 7 && e->rec == NONE && r->recs[e->parent].entry == NONE)
            memcpy(out + 20 * n++, r->recs[e->parent].oid, 20);
    }
    return n;
}

int gs_resolver_add_base(gs_resolver *r, const void *oid, int type, const void *data, size_t len, uint32_t depth) {
    uint32_t k = find_rec(r, oid), i;
    citem *c;
    if (k == NONE || r->recs[k].entry != NONE || r->recs[k].ref == NONE || r->nstack || r->pinned)
        return 0;
    if (len > (size_t)SIZE_MAX - sizeof(citem) || new_ent(r))
        return rfail(r, GS_RES_NOMEM, "out of memory");
    c = malloc(sizeof *c + len);
    if (!c)
        return rfail(r, GS_RES_NOMEM, "out of memory");
    i = r->nents - 1;
    memset(c, 0, sizeof *c);
    memcpy(c->data, data, len);
    c->len = len;
    c->idx = i;
    c->pinned = 1;
    r->ents[i].flags = F_EXT;
    r->ents[i].type = (uint8_t)type;
    r->ents[i].kind = (uint8_t)type;
    r->ents[i].depth = depth;
    r->pinned = c;
    r->ents[i].cache = c;
    lru_front(r, c);
    r->cache_bytes += c->len;
    resolved(r, i, k, len, NULL);
    return 1;
}

/* ---- after resolution ---- */

int gs_resolver_first_unresolved(const gs_resolver *r, uint64_t *offset, int *kind, uint8_t base[20]) {
    for (uint32_t i = 0; i < r->npack; i++) {
        const ent *e = &r->ents[i];
        if (e->rec == NONE) {
            *offset = e->offset;
            *kind = e->kind;
            if (e->kind == 7) {
                memcpy(base, r->recs[e->parent].oid, 20); /* unresolved: the base's record */
                return 2;
            }
            return 1;
        }
    }
    return 0;
}

static int type_of(const gs_resolver *r, const rec *x) { return r->ents[x->entry].type; }

int gs_resolver_wrong_link(const gs_resolver *r, uint8_t src[20], uint8_t oid[20], int *want, int *got) {
    for (unsigned c = 0; c < r->nconflicts; c++) {
        const rec *x = &r->recs[r->conflicts[c].rec];
        if (x->entry != NONE && type_of(r, x) != r->conflicts[c].want) {
            memcpy(src, r->recs[r->ents[r->conflicts[c].src].rec].oid, 20);
            memcpy(oid, x->oid, 20);
            *want = r->conflicts[c].want;
            *got = type_of(r, x);
            return 1;
        }
    }
    for (uint32_t k = 0; k < r->nrecs; k++) {
        const rec *x = &r->recs[k];
        if (x->want && x->entry != NONE && type_of(r, x) != x->want) {
            memcpy(src, r->recs[r->ents[x->src].rec].oid, 20);
            memcpy(oid, x->oid, 20);
            *want = x->want;
            *got = type_of(r, x);
            return 1;
        }
    }
    return 0;
}

size_t gs_resolver_external_links(const gs_resolver *r, uint64_t *cursor, uint8_t *srcs, uint8_t *oids,
                                  uint8_t *types, size_t cap) {
    size_t n = 0;
    uint64_t k = *cursor;
    for (; k < r->nrecs && n < cap; k++) {
        const rec *x = &r->recs[k];
        if (x->want && x->entry == NONE) {
            memcpy(srcs + 20 * n, r->recs[r->ents[x->src].rec].oid, 20);
            memcpy(oids + 20 * n, x->oid, 20);
            types[n++] = x->want;
        }
    }
    *cursor = k;
    return n;
}

size_t gs_resolver_unnamed(const gs_resolver *r, uint64_t *cursor, uint8_t *oids, size_t cap) {
    size_t n = 0;
    uint64_t k = *cursor;
    for (; k < r->nrecs && n < cap; k++) {
        const rec *x = &r->recs[k];
        if (!x->want && x->entry != NONE && !(r->ents[x->entry].flags & F_EXT))
            memcpy(oids + 20 * n++, x->oid, 20);
    }
    *cursor = k;
    return n;
}
