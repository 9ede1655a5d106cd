"""Throughput of native/: SHA-1 (C vs hashlib), delta apply and pack scan (C vs pure Python).

Run: .venv/bin/python benchmarks/bench_native.py [--pack FILE.pack] [--history SIZE]
Prints the machine, then MB/s per operation (best of --repeat runs). The pack scanned is
--pack if given, else the pack of benchmarks.history's generated repository when it can
be built (or is cached), else a pack of this checkout's own history made by git.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import native  # noqa: E402
from native import pure  # noqa: E402


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def report(name: str, nbytes: int, seconds: float) -> None:
    print(f"  {name:<34} {nbytes / seconds / 1e6:10.1f} MB/s")


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def synthetic_delta(base: bytes, rnd: random.Random) -> tuple[bytes, int]:
    """A delta like git's for an edited file: 4 KiB copies with small inserts between them."""
    ops = bytearray()
    out = 0
    for off in range(0, len(base) - 4096, 4096):
        ops += bytes([0x80 | 0x0F | 0x30]) + off.to_bytes(4, "little") + (4096).to_bytes(2, "little")
        ins = bytes(rnd.randrange(256) for _ in range(64))
        ops += bytes([len(ins)]) + ins
        out += 4096 + len(ins)
    return varint(len(base)) + varint(out) + bytes(ops), out


def find_pack(args: argparse.Namespace) -> Path:
    if args.pack:
        return Path(args.pack)
    try:
        from benchmarks.history import generate

        repo = generate(args.history)
        packs = sorted((repo / "objects" / "pack").glob("*.pack"), key=lambda p: p.stat().st_size)
        if packs:
            return packs[-1]
    except Exception as e:  # the generator may need the network; fall back to our own history
        print(f"(history repo unavailable: {e}; using this checkout's history)")
    tmp = Path(tempfile.mkdtemp(prefix="bench-native-"))
    objs = subprocess.run(
        ["git", "rev-list", "--objects", "--all"], cwd=ROOT, capture_output=True, check=True
    )
    name = (
        subprocess.run(
            ["git", "pack-objects", "-q", "--delta-base-offset", str(tmp / "p")],
            cwd=ROOT,
            input=objs.stdout,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .strip()
    )
    return tmp / f"p-{name}.pack"


def scan(impl: ModuleType, data: bytes, chunk: int) -> int:
    s = impl.PackScanner()
    n = 0
    for i in range(0, len(data), chunk):
        n += len(s.feed(data[i : i + chunk]))
    s.finish()
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pack", help="a .pack file to scan")
    ap.add_argument("--history", default="small", help="benchmarks.history size for the pack")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--mb", type=int, default=128, help="SHA-1 buffer size in MiB")
    args = ap.parse_args()

    import hashlib

    cext = native.cext
    print(
        f"machine: {platform.machine()} ({os.uname().machine}), cpu: {cpu_model()}, cores: {os.cpu_count()}"
    )
    print(f"python {platform.python_version()}, native.IMPLEMENTATION = {native.IMPLEMENTATION}")
    if cext is None:
        print("WARNING: the C extension is not built; only the pure twin is measured")

    rnd = random.Random(42)
    data = rnd.randbytes(args.mb << 20)
    print(f"SHA-1 of {args.mb} MiB")
    if cext is not None:
        report("C (native.cext.sha1)", len(data), best(lambda: cext.sha1(data), args.repeat))
    report("hashlib.sha1 (OpenSSL)", len(data), best(lambda: hashlib.sha1(data).digest(), args.repeat))
    small = [data[i : i + 300] for i in range(0, 300 * 20000, 300)]
    if cext is not None:
        report(
            "C object_id, 20k x 300 B",
            300 * len(small),
            best(lambda: [cext.object_id(3, s) for s in small], 3),
        )
    report(
        "pure object_id, 20k x 300 B",
        300 * len(small),
        best(lambda: [pure.object_id(3, s) for s in small], 3),
    )

    base = rnd.randbytes(16 << 20)
    delta, out = synthetic_delta(base, rnd)
    print(f"delta apply ({out >> 20} MiB out, {len(delta)} B delta, 4 KiB copies)")
    if cext is not None:
        report("C", out, best(lambda: cext.delta_apply(base, delta), args.repeat))
    report("pure Python", out, best(lambda: pure.delta_apply(base, delta), 1))

    pack = find_pack(args)
    pdata = pack.read_bytes()
    inflated = sum(e.size for e in pure.PackScanner().feed(pdata))
    print(f"pack scan of {pack} ({len(pdata) / 1e6:.1f} MB, {inflated / 1e6:.1f} MB inflated), 1 MiB pieces")
    print("  (MB/s of pack bytes; inflating every entry with zlib dominates the time)")
    if cext is not None:
        t = best(lambda: scan(cext, pdata, 1 << 20), args.repeat)
        report(f"C ({scan(cext, pdata, 1 << 20)} entries)", len(pdata), t)
    report("pure Python", len(pdata), best(lambda: scan(pure, pdata, 1 << 20), 1))


if __name__ == "__main__":
    main()
