/* delta.c: git delta application, from gitformat-pack(5) "Deltified representation".
 *
 * A delta is: base size varint, result size varint (7 bits per byte, little endian,
 * high bit = more), then instructions. 1xxxxxxx is a copy from the base: bits 0-3 say
 * which offset bytes follow, bits 4-6 which size bytes (a size of 0 means 0x10000).
 * 0xxxxxxx with x != 0 inserts the next x bytes of the delta. 0x00 is reserved.
 *
 * Rules: the caller allocates exactly the declared result size; every copy is checked
 * against the base and the remaining output before any byte moves, every read of the
 * delta is checked against its end, and the output must be filled exactly. Varints are
 * at most 9 bytes (values < 2^63), the same limit as the Python twin.
 */
#include <string.h>

#include "native.h"

static int read_varint(const uint8_t *d, size_t n, size_t *pos, uint64_t *value) {
    uint64_t v = 0;
    unsigned shift = 0;
    for (;;) {
        uint8_t c;
        if (*pos >= n)
            return GS_DELTA_TRUNCATED_HEADER;
        c = d[(*pos)++];
        v |= (uint64_t)(c & 0x7f) << shift;
        shift += 7;
        if (!(c & 0x80))
            break;
        if (shift >= 63)
            return GS_DELTA_VARINT_TOO_LONG;
    }
    *value = v;
    return GS_DELTA_OK;
}

int gs_delta_header(const void *delta, size_t len, uint64_t *base_size,
                    uint64_t *result_size, size_t *header_len) {
    size_t pos = 0;
    int rc = read_varint(delta, len, &pos, base_size);
    if (rc)
        return rc;
    rc = read_varint(delta, len, &pos, result_size);
    if (rc)
        return rc;
    *header_len = pos;
    return GS_DELTA_OK;
}

int gs_delta_apply(const void *base_in, size_t base_len, const void *delta_in,
                   size_t delta_len, uint8_t *out, size_t out_len) {
    const uint8_t *base = base_in, *delta = delta_in;
    uint64_t bsize, rsize;
    size_t pos, o = 0;
    int rc = gs_delta_header(delta, delta_len, &bsize, &rsize, &pos);
    if (rc)
        return rc;
    if (bsize != (uint64_t)base_len)
        return GS_DELTA_BASE_SIZE;
    if (rsize != (uint64_t)out_len)
        return GS_DELTA_RESULT_SIZE;
    while (pos < delta_len) {
        uint8_t op = delta[pos++];
        if (op & 0x80) {
            size_t off = 0, size = 0;
            for (unsigned i = 0; i < 4; i++) {
                if (op & (1u << i)) {
                    if (pos >= delta_len)
                        return GS_DELTA_TRUNCATED_OP;
                    off |= (size_t)delta[pos++] << (8 * i);
                }
            }
            for (unsigned i = 0; i < 3; i++) {
                if (op & (0x10u << i)) {
                    if (pos >= delta_len)
                        return GS_DELTA_TRUNCATED_OP;
                    size |= (size_t)delta[pos++] << (8 * i);
                }
            }
            if (size == 0)
                size = 0x10000;
            /* off < 2^32 and size < 2^24, so these comparisons cannot wrap */
            if (off > base_len || size > base_len - off)
                return GS_DELTA_COPY_OUTSIDE_BASE;
            if (size > out_len - o)
                return GS_DELTA_OVERFLOW;
            memcpy(out + o, base + off, size);
            o += size;
        } else if (op) {
            if (op > delta_len - pos)
                return GS_DELTA_TRUNCATED_OP;
            if (op > out_len - o)
                return GS_DELTA_OVERFLOW;
            memcpy(out + o, delta + pos, op);
            pos += op;
            o += op;
        } else {
            return GS_DELTA_RESERVED_OP;
        }
    }
    if (o != out_len)
        return GS_DELTA_SHORT;
    return GS_DELTA_OK;
}

const char *gs_delta_strerror(int code) {
    switch (code) {
    case GS_DELTA_OK:
        return "ok";
    case GS_DELTA_TRUNCATED_HEADER:
        return "delta header truncated";
    case GS_DELTA_VARINT_TOO_LONG:
        return "delta size varint too long";
    case GS_DELTA_BASE_SIZE:
        return "delta base size does not match the base";
    case GS_DELTA_RESULT_SIZE:
        return "output buffer does not match the declared result size";
    case GS_DELTA_TRUNCATED_OP:
        return "delta instruction truncated";
    case GS_DELTA_RESERVED_OP:
        return "delta uses reserved opcode 0";
    case GS_DELTA_COPY_OUTSIDE_BASE:
        return "delta copy outside the base";
    case GS_DELTA_OVERFLOW:
        return "delta writes past the declared result size";
    case GS_DELTA_SHORT:
        return "delta output shorter than the declared result size";
    default:
        return "unknown delta error";
    }
}
