"""Plain data shared by the storage layer and the Git protocol layer.

Rules:
- No I/O here, no SQL, no sockets: only value types and small pure helpers.
- An object id (``Oid``) is always the raw 20-byte SHA-1 inside the server. Hex appears
  only at the edges (wire protocol, JSON, logs); convert with ``oid_hex`` / ``oid_raw``.
- Object type numbers are git's pack type numbers (gitformat-pack): 1 commit, 2 tree,
  3 blob, 4 tag; 6 and 7 are the delta entry kinds and never the type of an object.
"""

from __future__ import annotations

import binascii
import enum
from dataclasses import dataclass, field

Oid = bytes
ZERO_OID: Oid = b"\x00" * 20
ZERO_HEX = b"0" * 40


class ObjType(enum.IntEnum):
    COMMIT = 1
    TREE = 2
    BLOB = 3
    TAG = 4

    @property
    def type_name(self) -> bytes:
        return _TYPE_NAMES[self]

    @classmethod
    def from_name(cls, name: bytes) -> ObjType:
        try:
            return _NAME_TYPES[name]
        except KeyError:
            raise ValueError(f"unknown object type {name!r}") from None


class EntryKind(enum.IntEnum):
    """How an entry is stored in a pack: a whole object, or a delta against a base."""

    COMMIT = 1
    TREE = 2
    BLOB = 3
    TAG = 4
    OFS_DELTA = 6
    REF_DELTA = 7


_TYPE_NAMES = {
    ObjType.COMMIT: b"commit",
    ObjType.TREE: b"tree",
    ObjType.BLOB: b"blob",
    ObjType.TAG: b"tag",
}
_NAME_TYPES = {v: k for k, v in _TYPE_NAMES.items()}


def oid_hex(oid: Oid) -> str:
    return oid.hex()


def oid_raw(hexstr: str | bytes) -> Oid:
    """Parse a 40-digit hex object id; raises ValueError on anything else."""
    if isinstance(hexstr, str):
        hexstr = hexstr.encode("ascii", "strict")
    if len(hexstr) != 40:
        raise ValueError(f"object id must be 40 hex digits, got {len(hexstr)}")
    try:
        return binascii.unhexlify(hexstr)
    except binascii.Error:
        raise ValueError("object id is not hexadecimal") from None


@dataclass(frozen=True, slots=True)
class Ref:
    """One advertised ref. ``peeled`` is the object an annotated tag finally points at."""

    name: str
    oid: Oid
    peeled: Oid | None = None
    symref_target: str | None = None  # set only on HEAD (or other symbolic refs)


@dataclass(frozen=True, slots=True)
class FilterSpec:
    """A partial-clone filter (gitprotocol-v2 ``filter``; rev-list --filter)."""

    kind: str  # "blob:none" | "blob:limit" | "tree"
    limit: int = 0  # bytes for blob:limit, depth for tree

    @classmethod
    def parse(cls, text: str) -> FilterSpec:
        """Parse ``blob:none``, ``blob:limit=<n>[kmg]`` or ``tree:<depth>``; ValueError otherwise."""
        if text == "blob:none":
            return cls("blob:none")
        if text.startswith("blob:limit="):
            num = text[len("blob:limit=") :]
            mult = 1
            if num[-1:].lower() in ("k", "m", "g"):
                mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[num[-1].lower()]
                num = num[:-1]
            if not num.isdigit():
                raise ValueError(f"bad filter {text!r}")
            return cls("blob:limit", int(num) * mult)
        if text.startswith("tree:"):
            num = text[len("tree:") :]
            if not num.isdigit():
                raise ValueError(f"bad filter {text!r}")
            return cls("tree", int(num))
        raise ValueError(f"unsupported filter {text!r}")


@dataclass(slots=True)
class PackRequest:
    """What a fetch asks for, protocol-independent (v0 and v2 both map to this)."""

    wants: list[Oid]
    haves: list[Oid] = field(default_factory=list)  # commits the client has (only those we have too)
    client_shallows: list[Oid] = field(default_factory=list)  # the client's current shallow boundary
    depth: int | None = None  # deepen N
    deepen_since: int | None = None  # unix seconds
    deepen_not: list[Oid] = field(default_factory=list)  # resolved ref tips to exclude
    deepen_relative: bool = False
    filter: FilterSpec | None = None
    ofs_delta: bool = False
    thin_pack: bool = False
    include_tag: bool = False

    @property
    def is_shallow_request(self) -> bool:
        return self.depth is not None or self.deepen_since is not None or bool(self.deepen_not)


@dataclass(frozen=True, slots=True)
class ShallowUpdate:
    """Result of a deepen request: commits that become shallow / stop being shallow."""

    shallow: list[Oid]
    unshallow: list[Oid]


@dataclass(frozen=True, slots=True)
class RefCommand:
    """One line of a push: move ``ref`` from ``old`` to ``new`` (ZERO_OID = create/delete)."""

    old: Oid
    new: Oid
    ref: str

    @property
    def is_delete(self) -> bool:
        return self.new == ZERO_OID

    @property
    def is_create(self) -> bool:
        return self.old == ZERO_OID


@dataclass(frozen=True, slots=True)
class RefResult:
    """Outcome of one ref command; ``error`` is None when it succeeded (git's ``ok``)."""

    ref: str
    error: str | None = None


@dataclass(frozen=True, slots=True)
class PushResult:
    """What receive-pack reports: ``unpack_error`` None means ``unpack ok``."""

    unpack_error: str | None
    refs: list[RefResult]


@dataclass(frozen=True, slots=True)
class PushContext:
    """Who pushes and how; recorded in the reflog."""

    token_id: str | None = None
    via: str = "git"  # "git" | "api" | "restore" | "import" | "fork"
    atomic: bool = False
    push_options: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """Where and how one object is stored: an entry of a stored pack.

    ``offset``/``length`` cover the whole entry (header and zlib stream) inside pack
    ``pack_id``; the zlib stream starts at ``offset + header_len``. For deltas ``base`` is
    the base object's id (ofs-deltas resolved to an id at ingest) and ``depth`` the chain
    length; ``type``/``size`` are always those of the resolved object.
    """

    oid: Oid
    type: ObjType
    size: int
    kind: EntryKind
    pack_id: int
    offset: int
    length: int
    header_len: int
    crc32: int
    base: Oid | None
    depth: int
    # Which store holds the entry: () this one; (i,) its i-th alternate (a fork parent);
    # (i, j) that alternate's j-th alternate, and so on. read_entry_bytes follows it.
    source: tuple[int, ...] = ()

    @classmethod
    def from_row(cls, row: tuple, source: tuple[int, ...] = ()) -> StoredEntry:
        """An entry from an ``objects`` row selected as ``ENTRY_COLUMNS``."""
        oid, t, size, kind, pack_id, offset, length, hlen, crc, base, depth = row
        return cls(
            bytes(oid),
            ObjType(t),
            size,
            EntryKind(kind),
            pack_id,
            offset,
            length,
            hlen,
            crc,
            bytes(base) if base is not None else None,
            depth,
            source,
        )


# The ``objects`` columns StoredEntry.from_row reads, in its order.
ENTRY_COLUMNS = "oid, type, size, kind, pack_id, offset, length, header_len, crc32, base, depth"


@dataclass(frozen=True, slots=True)
class ReflogEntry:
    ref: str
    old: Oid
    new: Oid
    at_us: int  # UTC microseconds since the epoch
    token_id: str | None
    via: str
    message: str = ""
