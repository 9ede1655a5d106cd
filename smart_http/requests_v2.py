"""Parsers of protocol v2 command requests (gitprotocol-v2 "Command Request").

    request = flush                                  (empty: no more commands)
            | command=<key> *capability [delim *argument] flush

Rules:
- Sans-IO: ``CommandRequestParser.feed(event)`` until ``complete``.
- Request capabilities must be ones we advertised (agent, object-format=sha1,
  server-option, session-id); anything else raises RemoteProtocolError, as git's serve.c.
- Arguments are then parsed per command into frozen values; an unknown argument raises.
- ``packfile-uris`` is accepted and ignored (we never send URIs); ``sideband-all`` and
  ``wait-for-done`` are honoured by the driver.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Final

from smart_http.errors import RemoteProtocolError, UnsupportedRequest
from smart_http.fields import decode_text, parse_number, parse_oid, parse_refname
from smart_http.pktline import DELIM, FLUSH, Event, strip_lf
from smart_http.requests_v0 import parse_filter
from storage.model import FilterSpec, Oid

COMMANDS: Final = frozenset({"ls-refs", "fetch", "object-info"})


class State(enum.Enum):
    START = "start"
    CAPS = "capabilities"
    ARGS = "arguments"
    DONE = "done"


@dataclass(slots=True)
class CommandRequest:
    """One v2 request; ``command`` is None for the empty request (a lone flush)."""

    command: str | None = None
    agent: str | None = None
    session_id: str | None = None
    server_options: list[str] = field(default_factory=list)
    args: list[bytes] = field(default_factory=list)


class CommandRequestParser:
    def __init__(self) -> None:
        self.state = State.START
        self.request = CommandRequest()

    @property
    def complete(self) -> bool:
        return self.state is State.DONE

    def feed(self, event: Event) -> None:
        """Consume one event. Raises RemoteProtocolError; state is unchanged then."""
        state = self.state
        if state is State.DONE:
            raise RemoteProtocolError("protocol error: data after the end of a command request")
        if event is FLUSH:
            self.state = State.DONE
        elif event is DELIM:
            if state is not State.CAPS:
                raise RemoteProtocolError("protocol error: unexpected delim packet")
            self.state = State.ARGS
        elif isinstance(event, bytes):
            line = strip_lf(event)
            if state is State.START:
                self._command(line)
                self.state = State.CAPS
            elif state is State.CAPS:
                self._capability(line)
            else:
                self.request.args.append(line)
        else:
            raise RemoteProtocolError(f"protocol error: unexpected {event.name} packet")

    def _command(self, line: bytes) -> None:
        if not line.startswith(b"command="):
            raise RemoteProtocolError(f"protocol error: expected command=, got {line[:60]!r}")
        name = line[len(b"command=") :].decode("ascii", "replace")
        if name not in COMMANDS:
            raise UnsupportedRequest(f"invalid command '{name[:60]}'")
        self.request.command = name

    def _capability(self, line: bytes) -> None:
        key, eq, value = line.partition(b"=")
        if key == b"agent" and eq:
            self.request.agent = decode_text(value, "agent")
        elif key == b"session-id" and eq:
            self.request.session_id = decode_text(value, "session-id")
        elif key == b"server-option" and eq:
            self.request.server_options.append(decode_text(value, "server-option"))
        elif key == b"object-format" and eq:
            if value != b"sha1":
                raise RemoteProtocolError(f"unsupported object-format {value[:40]!r}")
        else:
            raise RemoteProtocolError(f"unknown capability '{line[:60].decode('ascii', 'replace')}'")


@dataclass(frozen=True, slots=True)
class LsRefsArgs:
    peel: bool = False
    symrefs: bool = False
    unborn: bool = False
    prefixes: tuple[str, ...] = ()


def parse_ls_refs(args: list[bytes]) -> LsRefsArgs:
    peel = symrefs = unborn = False
    prefixes: list[str] = []
    for line in args:
        if line == b"peel":
            peel = True
        elif line == b"symrefs":
            symrefs = True
        elif line == b"unborn":
            unborn = True
        elif line.startswith(b"ref-prefix "):
            prefixes.append(decode_text(line[len(b"ref-prefix ") :], "ref-prefix"))
        else:
            raise RemoteProtocolError(
                f"ls-refs: unexpected argument '{line[:60].decode('ascii', 'replace')}'"
            )
    # git caps the prefix list; past that it simply lists everything
    return LsRefsArgs(peel, symrefs, unborn, tuple(prefixes) if len(prefixes) <= 65536 else ())


@dataclass(slots=True)
class FetchArgs:
    wants: list[Oid] = field(default_factory=list)
    want_refs: list[str] = field(default_factory=list)
    haves: list[Oid] = field(default_factory=list)
    done: bool = False
    thin_pack: bool = False
    no_progress: bool = False
    include_tag: bool = False
    ofs_delta: bool = False
    client_shallows: list[Oid] = field(default_factory=list)
    depth: int | None = None
    deepen_since: int | None = None
    deepen_not: list[str] = field(default_factory=list)
    deepen_relative: bool = False
    filter: FilterSpec | None = None
    sideband_all: bool = False
    wait_for_done: bool = False


_FETCH_FLAGS: Final = {
    b"done": "done",
    b"thin-pack": "thin_pack",
    b"no-progress": "no_progress",
    b"include-tag": "include_tag",
    b"ofs-delta": "ofs_delta",
    b"deepen-relative": "deepen_relative",
    b"sideband-all": "sideband_all",
    b"wait-for-done": "wait_for_done",
}


def parse_fetch(args: list[bytes]) -> FetchArgs:
    out = FetchArgs()
    for line in args:
        flag = _FETCH_FLAGS.get(line)
        if flag is not None:
            setattr(out, flag, True)
            continue
        verb, _, arg = line.partition(b" ")
        if verb == b"want":
            out.wants.append(parse_oid(arg, "want"))
        elif verb == b"have":
            out.haves.append(parse_oid(arg, "have"))
        elif verb == b"want-ref":
            # git's clone asks for HEAD by name too (upload-pack resolves it with read_ref)
            out.want_refs.append("HEAD" if arg == b"HEAD" else parse_refname(arg))
        elif verb == b"shallow":
            out.client_shallows.append(parse_oid(arg, "shallow"))
        elif verb == b"deepen":
            out.depth = parse_number(arg, "depth") or None
        elif verb == b"deepen-since":
            out.deepen_since = parse_number(arg, "deepen-since")
        elif verb == b"deepen-not":
            out.deepen_not.append(decode_text(arg, "deepen-not"))
        elif verb == b"filter":
            out.filter = parse_filter(arg)
        elif verb == b"packfile-uris":
            pass
        else:
            raise RemoteProtocolError(f"fetch: unexpected argument '{line[:60].decode('ascii', 'replace')}'")
    if out.depth is not None and (out.deepen_since is not None or out.deepen_not):
        raise RemoteProtocolError("fetch: deepen and deepen-since (or deepen-not) cannot be used together")
    return out


@dataclass(frozen=True, slots=True)
class ObjectInfoArgs:
    size: bool
    oids: tuple[Oid, ...]


def parse_object_info(args: list[bytes]) -> ObjectInfoArgs:
    size = False
    oids: list[Oid] = []
    for line in args:
        if line == b"size":
            size = True
        elif line.startswith(b"oid "):
            oids.append(parse_oid(line[4:], "oid"))
        else:
            raise RemoteProtocolError(
                f"object-info: unexpected argument '{line[:60].decode('ascii', 'replace')}'"
            )
    return ObjectInfoArgs(size, tuple(oids))
