"""Parser of one protocol v0/v1 upload-pack request body (stateless RPC over HTTP).

Grammar (gitprotocol-pack "Packfile Negotiation", gitprotocol-http "compute_request"):

    want-list  = want SP oid SP caps, *(want oid | shallow oid | deepen n |
                 deepen-since t | deepen-not ref | filter spec)
    flush
    have-list  = *(have oid)
    end        = flush | done

An empty request (a lone flush) means the client wants nothing.

Rules:
- Sans-IO: ``feed(event)`` takes pkt-line events, ``finish()`` marks end of body.
- Lines that need a capability (shallow, deepen*, filter) are accepted whether or not the
  client repeated it: git's fetch-pack does not, since we advertised them.
- The states and the line kinds each accepts are a table (``_TRANSITIONS``): a line not
  allowed in the current state raises RemoteProtocolError and changes nothing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Final

from smart_http.capabilities import UPLOAD_PACK_V0, ClientCaps, parse_client_caps
from smart_http.errors import RemoteProtocolError
from smart_http.fields import decode_text, parse_number, parse_oid
from smart_http.pktline import FLUSH, Event, strip_lf
from storage.model import FilterSpec, Oid, PackRequest


class State(enum.Enum):
    START = "start"  # expecting the first want or a lone flush
    WANTS = "wants"  # wants, shallows, deepen, filter until flush
    HAVES = "haves"  # haves until flush or done
    DONE = "done"  # request complete


_TRANSITIONS: Final[dict[State, dict[str, State]]] = {
    State.START: {"want": State.WANTS, "flush": State.DONE},
    State.WANTS: {
        "want": State.WANTS,
        "shallow": State.WANTS,
        "deepen": State.WANTS,
        "deepen-since": State.WANTS,
        "deepen-not": State.WANTS,
        "filter": State.WANTS,
        "flush": State.HAVES,
    },
    State.HAVES: {"have": State.HAVES, "flush": State.DONE, "done": State.DONE},
    State.DONE: {},
}


@dataclass(slots=True)
class UploadRequest:
    """One parsed v0 request. ``haves`` is everything the client listed, in order."""

    wants: list[Oid] = field(default_factory=list)
    caps: ClientCaps = field(default_factory=ClientCaps)
    client_shallows: list[Oid] = field(default_factory=list)
    depth: int | None = None
    deepen_since: int | None = None
    deepen_not: list[str] = field(default_factory=list)
    filter: FilterSpec | None = None
    haves: list[Oid] = field(default_factory=list)
    done: bool = False
    # False when the body ended right after the want-list: the client only asked for
    # the shallow list, and the answer stops there (no ACK/NAK)
    negotiates: bool = False

    def pack_request(self, haves: list[Oid], deepen_not: list[Oid]) -> PackRequest:
        """The protocol-independent request, given the haves we share and resolved deepen-not."""
        return PackRequest(
            wants=list(dict.fromkeys(self.wants)),
            haves=haves,
            client_shallows=self.client_shallows,
            depth=self.depth,
            deepen_since=self.deepen_since,
            deepen_not=deepen_not,
            deepen_relative="deepen-relative" in self.caps,
            filter=self.filter,
            ofs_delta="ofs-delta" in self.caps,
            thin_pack="thin-pack" in self.caps,
            include_tag="include-tag" in self.caps,
        )


def parse_filter(arg: bytes) -> FilterSpec:
    """A filter-spec; RemoteProtocolError if unsupported."""
    try:
        return FilterSpec.parse(decode_text(arg, "filter"))
    except ValueError as exc:
        raise RemoteProtocolError(f"filter: {exc}") from None


class UploadRequestParser:
    """Accumulates one v0 request from pkt-line events."""

    def __init__(self) -> None:
        self.state = State.START
        self.request = UploadRequest()

    @property
    def complete(self) -> bool:
        return self.state is State.DONE

    def feed(self, event: Event) -> None:
        """Consume one event. Raises RemoteProtocolError on anything out of place."""
        if isinstance(event, bytes):
            line = strip_lf(event)
            verb, _, arg = line.partition(b" ")
            kind = verb.decode("ascii", "replace")
        elif event is FLUSH:
            kind, arg = "flush", b""
        else:
            raise RemoteProtocolError(f"protocol error: unexpected {event.name} packet")
        nxt = _TRANSITIONS[self.state].get(kind)
        if nxt is None:
            raise RemoteProtocolError(
                f"protocol error: unexpected {kind[:40]!r} in upload-pack request ({self.state.value})"
            )
        self._apply(kind, arg)
        if self.state is State.HAVES and nxt is State.DONE:
            self.request.negotiates = True
        self.state = nxt

    def finish(self) -> UploadRequest:
        """End of body. A request may stop after the want-list (no haves sent yet)."""
        if self.state is State.HAVES and not self.request.haves:
            self.state = State.DONE
        if self.state is not State.DONE:
            raise RemoteProtocolError("protocol error: upload-pack request ended early")
        return self.request

    def _apply(self, kind: str, arg: bytes) -> None:
        req = self.request
        if kind == "want":
            oid_text, _, caps = arg.partition(b" ")
            oid = parse_oid(oid_text, "want")
            if self.state is State.START:
                req.caps = parse_client_caps(caps, UPLOAD_PACK_V0)
            elif caps:
                raise RemoteProtocolError("protocol error: capabilities after the first want")
            req.wants.append(oid)
        elif kind == "shallow":
            req.client_shallows.append(parse_oid(arg, "shallow"))
        elif kind == "deepen":
            depth = parse_number(arg, "depth")
            req.depth = depth or None
        elif kind == "deepen-since":
            req.deepen_since = parse_number(arg, "deepen-since")
        elif kind == "deepen-not":
            req.deepen_not.append(decode_text(arg, "deepen-not"))
        elif kind == "filter":
            req.filter = parse_filter(arg)
        elif kind == "have":
            req.haves.append(parse_oid(arg, "have"))
        elif kind == "done":
            if arg:
                raise RemoteProtocolError("protocol error: junk after done")
            req.done = True
        if kind == "flush" and self.state is State.WANTS:
            if req.depth is not None and (req.deepen_since is not None or req.deepen_not):
                raise RemoteProtocolError("deepen and deepen-since (or deepen-not) cannot be used together")
