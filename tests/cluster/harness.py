"""Real processes for the cluster tests: a throw-away redis-server, nginx in front of N upstreams, N replicas.

Every class starts its process on a free loopback port inside a temp directory, waits (bounded) until it
serves, and stops it for good at the end; nothing is left running and nothing waits forever. They are plain
classes so any test can use them; `tests/cluster/conftest.py` wraps them in fixtures.

- `RedisServer(directory, password=None)`: Debian's `redis-server` with no persistence, bound to 127.0.0.1
  (and a unix socket in the directory). `.url` (with the password), `.unix_url`, `.port`, `.start()` (on the
  same port again after a stop or kill), `.stop()` (SIGTERM), `.kill()` (SIGKILL), `.pause()`/`.resume()`
  (SIGSTOP/SIGCONT: a frozen server whose sockets stay open), `.ping() -> bool`, `.log()`.
- `Nginx(directory, upstreams, conf=SHIPPED, replace={}, http="")`: renders the shipped example (`deploy/nginx/harbor.conf`) with
  the test's upstream addresses and listen port, wraps it in a main config whose pid, logs and temp paths
  are in the directory (`http` adds lines to its `http { }` block; `replace` edits the example for a
  control experiment), and runs `nginx -p DIR -c nginx.conf -e error.log -g 'daemon off;'`. `.url`,
  `.port`, `.conf` (the rendered example), `.stop()`, `.log()`.
- `Replicas(argv, count, directory, env=None, health_path="/healthz")`: `count` processes of `argv`, where
  every `{port}` and `{index}` in `argv` and in `env` values is replaced by the replica's port and index.
  `.ports`, `.urls`, `.addresses` (`127.0.0.1:PORT`), `.kill(i)` (SIGKILL), `.terminate(i)` (SIGTERM, then
  SIGKILL after 10 s), `.restart(i)` (same port), `.alive(i)`, `.log(i)`, `.logs()` (every stderr, for a
  failure report), `.stop()`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_NGINX = ROOT / "deploy" / "nginx" / "harbor.conf"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_binary(name: str) -> str | None:
    """`name` on PATH or in the sbin folders (nginx lives in /usr/sbin, often off a user's PATH)."""
    return shutil.which(name) or next(
        (str(p) for d in ("/usr/sbin", "/usr/bin", "/sbin") if (p := Path(d) / name).exists()), None
    )


def _wait(predicate: object, what: str, timeout: float, log: object) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise RuntimeError(f"{what} not ready within {timeout} s:\n{log()}")  # type: ignore[operator]


def _end(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM) -> None:
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGCONT)  # a paused process cannot act on SIGTERM
        proc.send_signal(sig)
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(STOP_TIMEOUT)


class RedisServer:
    """One throw-away redis-server; see the module docstring."""

    def __init__(self, directory: Path, *, password: str | None = None, binary: str | None = None) -> None:
        self.binary = binary or find_binary("redis-server") or "redis-server"
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.password = password
        self.port = free_port()
        self.socket_path = directory / "redis.sock"
        auth = f":{password}@" if password else ""
        self.url = f"redis://{auth}127.0.0.1:{self.port}/0"
        self.unix_url = f"unix://{auth}{self.socket_path}?db=0"
        self.log_path = directory / "redis.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = START_TIMEOUT) -> RedisServer:
        """Start (again, on the same port) and wait until PING answers."""
        if self.proc is not None and self.proc.poll() is None:
            return self
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        argv += ["--dir", str(self.directory), "--daemonize", "no", "--logfile", str(self.log_path)]
        argv += ["--unixsocket", str(self.socket_path), "--unixsocketperm", "700"]
        if self.password:
            argv += ["--requirepass", self.password]
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        _wait(lambda: self._exited() or self.ping(), "redis-server", timeout, self.log)
        if self._exited():
            raise RuntimeError(f"redis-server exited with {self.proc.returncode}:\n{self.log()}")
        return self

    def _exited(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def ping(self) -> bool:
        """True when the server answers PING now (0.5 s at most)."""
        client = redis.Redis(
            host="127.0.0.1",
            port=self.port,
            password=self.password,
            socket_timeout=0.5,
            socket_connect_timeout=0.5,
            retry=None,
        )
        try:
            return bool(client.ping())
        except (redis.RedisError, OSError):
            return False
        finally:
            client.close()

    def stop(self) -> None:
        _end(self.proc)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT)

    def pause(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, "redis-server is not running"
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else "(no redis log)"


def render_nginx(template: str, upstreams: Sequence[str], listen: str) -> str:
    """The shipped example with its upstream servers replaced by `upstreams` and its `listen` by `listen`.

    Every new `server` line keeps the parameters of the example's first one (max_fails, fail_timeout, …).

    Raises:
        ValueError: the example lacks the `upstream harbor_replicas { … }` block, a server in it, or `listen`.
    """
    block = re.search(r"(upstream\s+harbor_replicas\s*\{)(.*?)(\n\})", template, re.S)
    first = re.search(r"^(\s*)server\s+\S+([^;]*);", block.group(2), re.M) if block else None
    if block is None or first is None or not re.search(r"^\s*listen\s", template, re.M):
        raise ValueError("the nginx example needs `upstream harbor_replicas { server …; }` and a `listen` line")
    indent, params = first.group(1).strip("\n"), first.group(2)
    servers = "".join(f"{indent}server {address}{params};\n" for address in upstreams)
    lines = re.sub(r"^\s*server\s+[^;]+;[^\n]*\n", "", block.group(2), flags=re.M)
    body = lines.replace("\n", "\n" + servers, 1) if lines.startswith("\n") else "\n" + servers + lines
    rendered = template[: block.start(2)] + body + template[block.end(2) :]
    return re.sub(r"^(\s*)listen\s+[^;]+;", rf"\g<1>listen {listen};", rendered, count=1, flags=re.M)


class Nginx:
    """nginx in front of `upstreams` (host:port strings) with the shipped example; see the module docstring."""

    def __init__(
        self,
        directory: Path,
        upstreams: Sequence[str],
        *,
        conf: Path = SHIPPED_NGINX,
        replace: Mapping[str, str] | None = None,
        http: str = "",
    ) -> None:
        self.binary = find_binary("nginx") or "nginx"
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        text = conf.read_text()
        for old, new in (replace or {}).items():  # a test's variant of the example (e.g. buffering on)
            assert old in text, f"{old!r} is not in {conf}"
            text = text.replace(old, new)
        self.conf = render_nginx(text, upstreams, f"127.0.0.1:{self.port}")
        self.http = http  # extra lines for the main `http { }` block, as a site's own config would have
        (directory / "harbor.conf").write_text(self.conf)
        (directory / "nginx.conf").write_text(self._main())
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def _main(self) -> str:
        d = self.directory
        temps = "".join(
            f"    {kind}_temp_path {d / (kind + '_temp')};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        user = "user root root;\n" if os.geteuid() == 0 else ""  # workers need the 0700 temp dir as well
        return (
            f"{user}worker_processes 1;\npid {d / 'nginx.pid'};\nerror_log {d / 'error.log'} info;\n"
            "events { worker_connections 1024; }\n"
            f"http {{\n    access_log {d / 'access.log'};\n{temps}    {self.http}\n    include {d / 'harbor.conf'};\n}}\n"
        )

    def start(self, timeout: float = START_TIMEOUT) -> None:
        argv = [
            self.binary,
            "-p",
            str(self.directory),
            "-c",
            "nginx.conf",
            "-e",
            str(self.directory / "error.log"),
            "-g",
            "daemon off;",
        ]
        check = subprocess.run([*argv[:-2], "-t"], capture_output=True, text=True, timeout=timeout)
        if check.returncode != 0:
            raise RuntimeError(f"nginx refused the rendered config:\n{check.stderr}\n{self.conf}")
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=(self.directory / "stderr.log").open("wb")
        )
        _wait(lambda: self.proc.poll() is not None or self._answers(), "nginx", timeout, self.log)  # type: ignore[union-attr]
        if self.proc.poll() is not None:
            raise RuntimeError(f"nginx exited with {self.proc.returncode}:\n{self.log()}")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")
                return s.recv(16).startswith(b"HTTP/")
        except OSError:
            return False

    def stop(self) -> None:
        _end(self.proc, signal.SIGQUIT)  # graceful: finish open requests, then exit

    def log(self) -> str:
        return "\n".join(
            p.read_text(errors="replace")
            for p in (self.directory / "error.log", self.directory / "stderr.log")
            if p.exists()
        )


class Replicas:
    """`count` processes of one argv on their own ports; see the module docstring."""

    def __init__(
        self,
        argv: Sequence[str],
        count: int,
        directory: Path,
        *,
        env: Mapping[str, str] | None = None,
        health_path: str = "/healthz",
        ready_timeout: float = 60.0,
        start: bool = True,
    ) -> None:
        self.argv = list(argv)
        self.env = dict(env or {})
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.health_path = health_path
        self.ready_timeout = ready_timeout
        self.ports = [free_port() for _ in range(count)]
        self.urls = [f"http://127.0.0.1:{port}" for port in self.ports]
        self.addresses = [f"127.0.0.1:{port}" for port in self.ports]
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * count
        self.log_paths = [directory / f"replica-{i}.log" for i in range(count)]
        if start:
            self.start()

    def __len__(self) -> int:
        return len(self.ports)

    def _fill(self, text: str, index: int) -> str:
        return text.replace("{port}", str(self.ports[index])).replace("{index}", str(index))

    def start(self, index: int | None = None) -> None:
        """Launch replica `index` (every one when None) and wait until each answers `health_path` with 200."""
        indexes = range(len(self)) if index is None else [index]
        for i in indexes:
            if self.alive(i):
                continue
            env = {**os.environ, **{k: self._fill(v, i) for k, v in self.env.items()}}
            with self.log_paths[i].open("ab") as log:
                self.procs[i] = subprocess.Popen(
                    [self._fill(a, i) for a in self.argv],
                    cwd=ROOT,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
        for i in indexes:
            self.wait_ready(i)

    def wait_ready(self, index: int, timeout: float | None = None) -> None:
        proc = self.procs[index]
        assert proc is not None
        url = self.urls[index] + self.health_path
        deadline = time.monotonic() + (timeout or self.ready_timeout)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"replica {index} exited with {proc.returncode}:\n{self.log(index)}")
            try:
                with urllib.request.urlopen(url, timeout=1) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"replica {index} not ready within {timeout or self.ready_timeout} s:\n{self.log(index)}")

    def alive(self, index: int) -> bool:
        proc = self.procs[index]
        return proc is not None and proc.poll() is None

    def kill(self, index: int) -> None:
        proc = self.procs[index]
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(STOP_TIMEOUT)

    def terminate(self, index: int) -> None:
        _end(self.procs[index])

    def restart(self, index: int) -> None:
        self.terminate(index)
        self.start(index)

    def stop(self) -> None:
        for i in range(len(self)):
            self.terminate(i)

    def log(self, index: int) -> str:
        path = self.log_paths[index]
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self) -> str:
        return "\n".join(f"--- replica {i} ({self.addresses[i]}) stderr ---\n{self.log(i)}" for i in range(len(self)))


def install_hint() -> str:
    return f"run `make services` (make test does it) — {sys.executable} found no redis-server/nginx"
