/* tree.c: scan a git tree object into the ids it links to (gitformat: tree entries are
 * "<octal mode> <name>\0<20-byte id>").
 *
 * Rules (the same as storage/objlinks.py and native/pure.py tree_links): a mode is 1..7
 * octal digits; a name is non-empty, has no '/', and is neither "." nor ".."; the mode's
 * file type must be a tree (040000), a blob (0100000 regular, 0120000 symlink) or a
 * gitlink (0160000, skipped: it names a commit of another repository). Tree ids go to
 * `trees`, blob ids to `blobs`, 20 bytes each; both buffers must hold `len` bytes (an
 * entry is at least 24 bytes, its id 20). Pure C, no allocation, GIL released by cffi.
 */
#include <string.h>

#include "native.h"

int gs_tree_links(const void *data, size_t len, uint8_t *trees, size_t *ntrees,
                  uint8_t *blobs, size_t *nblobs, size_t *err_pos)
{
    const uint8_t *p = (const uint8_t *)data;
    size_t pos = 0, nt = 0, nb = 0;
    *ntrees = 0;
    *nblobs = 0;
    while (pos < len) {
        size_t sp = pos, nul;
        uint32_t mode = 0;
        *err_pos = pos;
        while (sp < len && sp < pos + 8 && p[sp] != ' ')
            sp++;
        if (sp >= len || p[sp] != ' ' || sp == pos)
            return GS_TREE_BAD_ENTRY;
        nul = sp + 1;
        while (nul < len && p[nul] != 0)
            nul++;
        if (nul >= len || len - nul < 21)
            return GS_TREE_BAD_ENTRY;
        {
            const uint8_t *name = p + sp + 1;
            size_t nlen = nul - sp - 1;
            if (nlen == 0 || memchr(name, '/', nlen) != NULL || (nlen == 1 && name[0] == '.') ||
                (nlen == 2 && name[0] == '.' && name[1] == '.'))
                return GS_TREE_BAD_NAME;
        }
        for (size_t i = pos; i < sp; i++) {
            if (p[i] < '0' || p[i] > '7')
                return GS_TREE_BAD_MODE;
            mode = (mode << 3) | (uint32_t)(p[i] - '0');
        }
        switch (mode & 0170000) {
        case 0040000:
            memcpy(trees + 20 * nt++, p + nul + 1, 20);
            break;
        case 0100000:
        case 0120000:
            memcpy(blobs + 20 * nb++, p + nul + 1, 20);
            break;
        case 0160000:
            break;
        default:
            return GS_TREE_BAD_MODE;
        }
        pos = nul + 21;
    }
    *ntrees = nt;
    *nblobs = nb;
    return 0;
}
