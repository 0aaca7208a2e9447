"""A throw-away PostgreSQL cluster from Debian's packages: initdb + pg_ctl on a free loopback port in a temp dir.

The tests (and `make bench`) run as root here, and initdb refuses root, so the cluster belongs to an
unprivileged user (`postgres`, which Debian's package creates, else `nobody`) and its commands run through
`runuser`. The cluster gets the sample shop database, the README's least-privilege role (the package's
`postgres_role.sql`, run verbatim), a writer role for execute_write, and password authentication on TCP,
so DSNs carry real passwords that the tests can look for in error messages.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from sql_server import sample

ADMIN, ADMIN_PASSWORD = "harbor_admin", "admin-Secret-4711"
READER_PASSWORD = "reader-Secret-0815"
WRITER_PASSWORD = "writer-Secret-1234"
ROLE_SQL = Path(__file__).resolve().parents[1] / "src" / "sql_server" / "postgres_role.sql"


def pg_bindir() -> Path:
    """The newest installed Debian PostgreSQL's bin folder (initdb, pg_ctl)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if found:
        return found[-1].parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    raise RuntimeError("PostgreSQL is not installed: run `make test` (it installs Debian's postgresql package)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    folder: Path
    port: int
    bindir: Path
    user: str | None  # the OS user the cluster runs as (None: the current user)

    def dsn(self, role: str = "harbor_reader", password: str = READER_PASSWORD, database: str = "shop") -> str:
        return f"postgresql://{role}:{password}@127.0.0.1:{self.port}/{database}"

    @property
    def admin_dsn(self) -> str:
        return self.dsn(ADMIN, ADMIN_PASSWORD)

    @property
    def reader_dsn(self) -> str:
        return self.dsn()

    @property
    def writer_dsn(self) -> str:
        return self.dsn("harbor_writer", WRITER_PASSWORD)

    def _run(self, *argv: str, timeout: float = 60) -> None:
        prefix = ["runuser", "-u", self.user, "--"] if self.user else []
        done = subprocess.run([*prefix, *argv], capture_output=True, text=True, timeout=timeout, cwd=self.folder)
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stdout}{done.stderr}")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=60 -c shared_buffers=32MB"
        )
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.folder / "data"), "-l", str(self.folder / "log"),
                  "-o", options, "-w", "-t", "60", "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.folder / "data"), "-m", mode, "-w", "-t", "60", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        except (RuntimeError, subprocess.TimeoutExpired):
            pass
        shutil.rmtree(self.folder, ignore_errors=True)


def _owner() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' user exists for initdb")


def create_cluster() -> Cluster:
    """initdb, start, and load the sample database and the roles."""
    bindir, user = pg_bindir(), _owner()
    # /tmp, not $TMPDIR: the cluster's unprivileged owner must be able to reach the folder (a TMPDIR under
    # /root would not be)
    folder = Path(tempfile.mkdtemp(prefix="harbor-pg-", dir="/tmp" if user else None))
    if user:
        entry = pwd.getpwnam(user)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    (folder / "pw").write_text(ADMIN_PASSWORD + "\n")
    if user:
        os.chown(folder / "pw", pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid)
    cluster = Cluster(folder, _free_port(), bindir, user)
    cluster._run(
        str(bindir / "initdb"), "-D", str(folder / "data"), "-U", ADMIN, "--pwfile", str(folder / "pw"),
        "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
    )  # fmt: skip
    try:
        cluster.start()
        asyncio.run(_load(cluster))
    except BaseException:
        cluster.destroy()  # never leave a half-made cluster running
        raise
    return cluster


async def _load(cluster: Cluster) -> None:
    admin = await asyncpg.connect(cluster.dsn(ADMIN, ADMIN_PASSWORD, "postgres"))
    await admin.execute("CREATE DATABASE shop")
    await admin.close()
    conn = await asyncpg.connect(cluster.admin_dsn)
    try:
        for statement in sample.ddl("postgresql"):
            await conn.execute(statement)
        for table, rows in sample.rows().items():
            await conn.copy_records_to_table(table, records=rows, columns=sample.COLUMNS[table])
        await conn.execute(
            "CREATE TABLE ledger (id serial PRIMARY KEY, item text NOT NULL, qty integer NOT NULL);"
            "CREATE TABLE types_demo (id integer PRIMARY KEY, n numeric(20,6), f float8, d date, ts timestamptz,"
            " j jsonb, arr integer[], b bytea, t text); ANALYZE"
        )
        await conn.execute(ROLE_SQL.read_text())
        await conn.execute(f"ALTER ROLE harbor_reader PASSWORD '{READER_PASSWORD}'")
        await conn.execute(
            f"CREATE ROLE harbor_writer LOGIN PASSWORD '{WRITER_PASSWORD}' NOSUPERUSER NOCREATEDB NOCREATEROLE;"
            "GRANT CONNECT ON DATABASE shop TO harbor_writer; GRANT USAGE ON SCHEMA public TO harbor_writer;"
            "GRANT SELECT ON ALL TABLES IN SCHEMA public TO harbor_writer;"
            "GRANT INSERT, UPDATE, DELETE ON ledger TO harbor_writer; GRANT USAGE ON SEQUENCE ledger_id_seq TO harbor_writer"
        )
    finally:
        await conn.close()
