"""Process measurements for the server benchmark: CPU seconds and sampled peak RSS of a
server's process tree, and a description of the machine.

Rules:
- Linux only (reads /proc). CPU seconds of a tree are the root's own time plus the times
  of children it has reaped (``cutime``/``cstime``), so a CGI server's finished requests
  count once they exit; ``cpu_seconds`` also adds the live descendants.
- Peak RSS is sampled every ``interval`` seconds over the root and all its descendants
  (summed): short-lived helpers may be missed between samples, which the docs say.
"""

from __future__ import annotations

import os
import platform
import threading
import time
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            out.extend(int(c) for c in text)
    except OSError:
        pass
    return out


def descendants(pid: int) -> list[int]:
    """``pid`` and every live process below it."""
    found = [pid]
    i = 0
    while i < len(found):
        found.extend(_children(found[i]))
        i += 1
    return found


def cpu_seconds(pid: int) -> float:
    """User + system seconds of ``pid``, its reaped children and its live descendants."""
    total = 0.0
    for i, p in enumerate(descendants(pid)):
        f = _stat_fields(p)
        if f is None:
            continue
        # fields after the comm: state=0 ... utime=11 stime=12 cutime=13 cstime=14
        total += int(f[11]) + int(f[12])
        if i == 0:
            total += int(f[13]) + int(f[14])
    return total / _TICK


def settle(pid: int, timeout: float = 3.0) -> None:
    """Wait (up to ``timeout``) until ``pid`` has no live child left, so the CPU time of
    helpers still finishing after the client is done (a CGI's git processes) is reaped
    into the root's ``cutime`` before it is read."""
    deadline = time.monotonic() + timeout
    while len(descendants(pid)) > 1 and time.monotonic() < deadline:
        time.sleep(0.01)


def rss_bytes(pid: int) -> int:
    """Summed resident set size of ``pid`` and its descendants."""
    total = 0
    for p in descendants(pid):
        try:
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * _PAGE
        except (OSError, IndexError, ValueError):
            pass
    return total


class PeakSampler:
    """Samples ``rss_bytes(pid)`` in a thread between ``start()`` and ``stop()``."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self.before = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.before = self.peak = rss_bytes(self.pid)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, rss_bytes(self.pid))

    def stop(self) -> int:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak = max(self.peak, rss_bytes(self.pid))
        return self.peak


def machine() -> str:
    """CPU model, cores and the current load average, one line."""
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{model}, {os.cpu_count()} cores, load average {load}, {platform.platform()}"


def wait_port(port: int, timeout: float = 30.0) -> None:
    """Block until 127.0.0.1:``port`` accepts a connection; TimeoutError otherwise."""
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")
