"""Parser of the command part of a receive-pack request (gitprotocol-pack "Reference
Update Request and Packfile Transfer").

    *shallow oid
    old SP new SP ref NUL caps      (first command)
    *(old SP new SP ref)
    flush
    [*push-option flush]            (only when push-options was negotiated)
    [PACK ...]                      (raw bytes, not pkt-lines; not parsed here)

Rules:
- Sans-IO over pkt-line events; ``complete`` turns true at the flush that ends the
  command list (or the push options). The caller then reads the rest as the pack.
- A lone flush is an empty request: no commands, no pack.
- Push certificates are not advertised, so ``push-cert`` raises.
- At most ``max_commands`` commands (the server's refs-per-push limit); one more raises.
- A ref may appear in one command only; a delete needs the delete-refs capability
  (we always advertise it) and is ``old != 0, new == 0``; old and new both zero is illegal.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Final

from smart_http.capabilities import RECEIVE_PACK_V0, ClientCaps, parse_client_caps
from smart_http.errors import RemoteProtocolError
from smart_http.fields import decode_text, parse_oid, parse_refname
from smart_http.pktline import FLUSH, Event, strip_lf
from storage.model import ZERO_OID, Oid, RefCommand

MAX_COMMANDS: Final = 100_000


class State(enum.Enum):
    START = "start"
    COMMANDS = "commands"
    OPTIONS = "push-options"
    DONE = "done"


@dataclass(slots=True)
class ReceiveRequest:
    commands: list[RefCommand] = field(default_factory=list)
    caps: ClientCaps = field(default_factory=ClientCaps)
    shallows: list[Oid] = field(default_factory=list)
    push_options: list[str] = field(default_factory=list)

    @property
    def expects_pack(self) -> bool:
        """A pack follows unless every command is a delete (or there are none)."""
        return any(not c.is_delete for c in self.commands)


def parse_command(line: bytes) -> RefCommand:
    """``old new ref`` into a RefCommand. Raises RemoteProtocolError."""
    parts = line.split(b" ", 2)
    if len(parts) != 3:
        raise RemoteProtocolError(f"protocol error: expected old/new/ref, got '{line[:100]!r}'")
    old = parse_oid(parts[0], "old id")
    new = parse_oid(parts[1], "new id")
    if old == ZERO_OID and new == ZERO_OID:
        raise RemoteProtocolError("protocol error: old and new ids are both zero")
    return RefCommand(old=old, new=new, ref=parse_refname(parts[2]))


class ReceiveRequestParser:
    def __init__(self, max_commands: int = MAX_COMMANDS) -> None:
        self.max_commands = max_commands
        self.state = State.START
        self.request = ReceiveRequest()
        self._seen: set[str] = set()

    @property
    def complete(self) -> bool:
        return self.state is State.DONE

    def feed(self, event: Event) -> None:
        """Consume one event. Raises RemoteProtocolError; state is unchanged then."""
        state = self.state
        req = self.request
        if state is State.DONE:
            raise RemoteProtocolError("protocol error: pkt-line after the command list")
        if event is FLUSH:
            if state is State.COMMANDS and "push-options" in req.caps:
                self.state = State.OPTIONS
            else:
                self.state = State.DONE
            return
        if not isinstance(event, bytes):
            raise RemoteProtocolError(f"protocol error: unexpected {event.name} packet")
        if state is State.OPTIONS:
            text = decode_text(strip_lf(event), "push option")
            if "\0" in text:
                raise RemoteProtocolError("protocol error: NUL in a push option")
            req.push_options.append(text)
            return
        line = strip_lf(event)
        if state is State.START and line.startswith(b"shallow "):
            req.shallows.append(parse_oid(line[len(b"shallow ") :], "shallow"))
            return
        if line.startswith(b"push-cert"):
            raise RemoteProtocolError("push certificates are not supported")
        if len(req.commands) >= self.max_commands:
            raise RemoteProtocolError(
                f"push updates more than {self.max_commands} refs (the server's limit per push)",
                http_status=413,
            )
        body, nul, caps_text = line.partition(b"\0")
        command = parse_command(body)
        if command.ref in self._seen:
            raise RemoteProtocolError(f"duplicate ref update for {command.ref}")
        if state is State.START:
            caps = parse_client_caps(caps_text, RECEIVE_PACK_V0) if nul else ClientCaps()
            req.caps = caps
        elif nul:
            raise RemoteProtocolError("protocol error: capabilities after the first command")
        self._seen.add(command.ref)
        req.commands.append(command)
        self.state = State.COMMANDS
