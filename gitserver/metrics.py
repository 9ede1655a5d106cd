"""Prometheus metrics served at ``GET /metrics`` (text exposition format 0.0.4).

Rules:
- Counters and histograms live in process memory (one ``Metrics`` per app); gauges are
  read at scrape time (actor host statistics, the catalog's repo count).
- ``route`` labels are route templates (``/api/v1/namespaces/{ns}/repos``, ``git
  info/refs``...), never raw paths, so label cardinality stays bounded.
- A push is a ``git-receive-pack`` POST; a fetch is a ``git-upload-pack`` POST (in
  protocol v2, ``ls-refs`` is counted too: it is a POST to the same endpoint).
- Open by default; with ``--metrics-token`` the request needs ``Authorization: Bearer
  <that token>`` (compared in constant time), else 401.
"""

from __future__ import annotations

import hmac
from collections import defaultdict

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    def __init__(self) -> None:
        self.pushes = 0
        self.fetches = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.requests: dict[tuple[str, str, str], int] = defaultdict(int)  # route, method, status
        self._hist: dict[str, list[int]] = {}
        self._sum: dict[str, float] = defaultdict(float)
        self._count: dict[str, int] = defaultdict(int)

    def observe(
        self, route: str, method: str, status: int | None, seconds: float, bytes_in: int, bytes_out: int
    ) -> None:
        """Record one finished request."""
        self.requests[(route, method, str(status or 0))] += 1
        self.bytes_in += bytes_in
        self.bytes_out += bytes_out
        if method == "POST" and route == "git git-receive-pack":
            self.pushes += 1
        elif method == "POST" and route == "git git-upload-pack":
            self.fetches += 1
        counts = self._hist.setdefault(route, [0] * len(BUCKETS))
        for i, bound in enumerate(BUCKETS):
            if seconds <= bound:
                counts[i] += 1
        self._sum[route] += seconds
        self._count[route] += 1

    def render(self, actors: dict[str, int], repos: int) -> bytes:
        """The exposition text; ``actors`` is ``ActorHost.statistics()``."""
        resident = actors.get("resident_actors", 0)
        lines = [
            "# HELP gitserver_actors_resident Repository actors with an open SQLite connection.",
            "# TYPE gitserver_actors_resident gauge",
            f"gitserver_actors_resident {resident}",
            "# HELP gitserver_actors_hibernated Repositories whose actor is asleep (no connection).",
            "# TYPE gitserver_actors_hibernated gauge",
            f"gitserver_actors_hibernated {max(0, repos - resident)}",
            "# HELP gitserver_actor_wakes_total Actor wake-ups (first connection opened).",
            "# TYPE gitserver_actor_wakes_total counter",
            f"gitserver_actor_wakes_total {actors.get('wakes_total', 0)}",
            "# HELP gitserver_actor_hibernations_total Actors put to sleep (idle or evicted).",
            "# TYPE gitserver_actor_hibernations_total counter",
            f"gitserver_actor_hibernations_total {actors.get('hibernations_total', 0)}",
            "# HELP gitserver_pushes_total git-receive-pack requests.",
            "# TYPE gitserver_pushes_total counter",
            f"gitserver_pushes_total {self.pushes}",
            "# HELP gitserver_fetches_total git-upload-pack requests.",
            "# TYPE gitserver_fetches_total counter",
            f"gitserver_fetches_total {self.fetches}",
            "# HELP gitserver_bytes_in_total Request body bytes received.",
            "# TYPE gitserver_bytes_in_total counter",
            f"gitserver_bytes_in_total {self.bytes_in}",
            "# HELP gitserver_bytes_out_total Response body bytes sent.",
            "# TYPE gitserver_bytes_out_total counter",
            f"gitserver_bytes_out_total {self.bytes_out}",
            "# HELP gitserver_requests_total HTTP requests by route, method and status.",
            "# TYPE gitserver_requests_total counter",
        ]
        for (route, method, status), n in sorted(self.requests.items()):
            lines.append(
                f'gitserver_requests_total{{route="{_esc(route)}",method="{method}",status="{status}"}} {n}'
            )
        lines += [
            "# HELP gitserver_request_duration_seconds Request latency by route.",
            "# TYPE gitserver_request_duration_seconds histogram",
        ]
        for route in sorted(self._hist):
            label = f'route="{_esc(route)}"'
            for bound, n in zip(BUCKETS, self._hist[route], strict=True):
                lines.append(f'gitserver_request_duration_seconds_bucket{{{label},le="{bound}"}} {n}')
            lines.append(
                f'gitserver_request_duration_seconds_bucket{{{label},le="+Inf"}} {self._count[route]}'
            )
            lines.append(f"gitserver_request_duration_seconds_sum{{{label}}} {self._sum[route]:.6f}")
            lines.append(f"gitserver_request_duration_seconds_count{{{label}}} {self._count[route]}")
        return ("\n".join(lines) + "\n").encode()


def authorized(header: str | None, token: str | None) -> bool:
    """True when no metrics token is set, or ``header`` is ``Bearer <token>``."""
    if not token:
        return True
    if not header:
        return False
    kind, _, value = header.strip().partition(" ")
    return kind.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
