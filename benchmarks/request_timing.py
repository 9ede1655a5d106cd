"""Per-request server time of the Git remote, in-process: the ASGI app called directly.

Rules:
- Times ``GET info/refs?service=git-upload-pack`` (protocol v2) and ``POST
  git-upload-pack`` with a v2 ``ls-refs`` request (what a no-op ``git fetch`` sends),
  ``--requests`` times each, through ``gitserver.app.App`` on ``Services`` opened on an
  existing data dir: no HTTP server, no sockets, so the figure is our code's alone.
- The data dir must hold the repo already (e.g. ``gitserver serve`` on it, then
  ``git push --mirror``), and the server must be stopped. ``--token`` is a read token of
  the repo. The first 10 requests of each kind are not counted (warm-up).

Run: .venv/bin/python -m benchmarks.request_timing --data-dir D --repo ns/name --token gs_...
"""

from __future__ import annotations

import argparse
import base64
import statistics
import time
from pathlib import Path
from typing import Any

import trio

LS_REFS_ARGS = ("peel", "symrefs", "unborn", "ref-prefix refs/", "ref-prefix HEAD")


def _pkt(text: str) -> bytes:
    data = text.encode()
    return b"%04x" % (len(data) + 4) + data


def ls_refs_request() -> bytes:
    head = _pkt("command=ls-refs\n") + _pkt("agent=git/2.39.5\n") + _pkt("object-format=sha1")
    return head + b"0001" + b"".join(_pkt(a + "\n") for a in LS_REFS_ARGS) + b"0000"


async def _call(app: Any, method: str, path: str, query: bytes, body: bytes, headers: list) -> None:
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "headers": headers,
        "client": ("127.0.0.1", 5555),
        "server": ("127.0.0.1", 80),
        "http_version": "1.1",
        "scheme": "http",
        "root_path": "",
    }
    sent = False
    status: list[int] = []

    async def receive() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await trio.sleep_forever()
        raise AssertionError

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope, receive, send)
    if status != [200]:
        raise SystemExit(f"{method} {path}: status {status}")


async def _run(data_dir: Path, repo: str, token: str, requests: int) -> dict[str, list[float]]:
    from gitserver.app import App
    from gitserver.config import load_settings
    from gitserver.services import Services

    services = Services.open(load_settings({"data_dir": data_dir, "access_log": "false"}))
    app = App(services)
    auth = b"Basic " + base64.b64encode(b"x:" + token.encode())
    common = [(b"authorization", auth), (b"git-protocol", b"version=2"), (b"user-agent", b"git/2.39.5")]
    post = [*common, (b"content-type", b"application/x-git-upload-pack-request")]
    times: dict[str, list[float]] = {"GET info/refs (v2)": [], "POST ls-refs": []}
    base = f"/git/{repo}.git"
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(services.host.run)
            for _ in range(requests + 10):
                start = time.perf_counter()
                await _call(app, "GET", f"{base}/info/refs", b"service=git-upload-pack", b"", common)
                times["GET info/refs (v2)"].append(time.perf_counter() - start)
                start = time.perf_counter()
                await _call(app, "POST", f"{base}/git-upload-pack", b"", ls_refs_request(), post)
                times["POST ls-refs"].append(time.perf_counter() - start)
            nursery.cancel_scope.cancel()
    finally:
        services.close()
    return {k: v[10:] for k, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--repo", required=True, help="NAMESPACE/NAME")
    parser.add_argument("--token", required=True)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args(argv)
    for name, values in trio.run(_run, args.data_dir, args.repo, args.token, args.requests).items():
        values.sort()
        print(
            f"{name}: median {statistics.median(values) * 1000:.3f} ms, "
            f"p90 {values[int(len(values) * 0.9)] * 1000:.3f} ms over {len(values)}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
