"""A throwaway PostgreSQL cluster for tests and benchmarks: start it, hand out databases, stop.

Used by the pytest fixtures (tests/conftest.py) and by benchmarks/bench_pg.py. The cluster
lives in a temporary folder with its socket beside it, listens on 127.0.0.1 at a free port,
trusts local connections (it holds nothing but test data) and runs without fsync. `initdb`
refuses to run as root, so as root the server runs as the `postgres` user (`runuser`).

`COACHCTL_TEST_PG` (a libpq URL of a server where the user may create databases) replaces
the throwaway cluster when set.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

PG_BIN = Path(os.environ.get("COACHCTL_PG_BIN", "/usr/lib/postgresql/15/bin"))


class Unavailable(Exception):
    """No server can be had here (no binaries, no driver): the reason, in one line."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    runuser = shutil.which("runuser")
    if runuser is None:
        raise Unavailable("running as root and `runuser` is missing (initdb refuses root)")
    return [runuser, "-u", "postgres", "--", *cmd]


def driver() -> Any:
    try:
        import psycopg2
    except ImportError as exc:
        raise Unavailable(
            f"the PostgreSQL driver is missing ({exc}): pip install -e '.[test]'"
        ) from None
    return psycopg2


class Cluster:
    """One PostgreSQL server; `admin_url` connects as a user that may create databases."""

    def __init__(self, admin_url: str, root: Path | None = None) -> None:
        self.admin_url = admin_url
        self.root = root

    @classmethod
    def start(cls) -> Cluster:
        """initdb + pg_ctl start in a fresh temp folder; raises Unavailable with the reason."""
        for tool in ("initdb", "pg_ctl"):
            if not (PG_BIN / tool).is_file():
                raise Unavailable(f"no PostgreSQL server binaries: {PG_BIN / tool} is missing")
        driver()
        root = Path(tempfile.mkdtemp(prefix="coachctl-pg-"))
        os.chmod(root, 0o755)
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
        data = root / "data"
        initdb = [str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"]
        initdb += ["--no-sync", "-E", "UTF8", "--locale=C"]
        done = subprocess.run(
            _as_server_user(initdb), capture_output=True, text=True, cwd=root, check=False
        )
        if done.returncode != 0:
            shutil.rmtree(root, ignore_errors=True)
            raise Unavailable(f"initdb failed: {done.stderr.strip()[-300:]}")
        last = ""
        for _attempt in range(5):
            port = _free_port()
            opts = (
                f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
            )
            start = [str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(root / "log")]
            start += ["-o", opts, "-w", "-t", "30", "start"]
            done = subprocess.run(
                _as_server_user(start), capture_output=True, text=True, cwd=root, check=False
            )
            if done.returncode == 0:
                return cls(f"postgresql://postgres@127.0.0.1:{port}/postgres", root)
            log = root / "log"
            last = log.read_text(errors="replace")[-300:] if log.exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise Unavailable(f"pg_ctl start failed: {last.strip()}")

    @classmethod
    def from_env(cls) -> Cluster | None:
        url = os.environ.get("COACHCTL_TEST_PG")
        if not url:
            return None
        driver()
        return cls(url)

    def stop(self) -> None:
        """Stop a cluster this class started (never one named by COACHCTL_TEST_PG)."""
        if self.root is None:
            return
        stop = [str(PG_BIN / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "stop"]
        subprocess.run(_as_server_user(stop), capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def url(self, dbname: str) -> str:
        """The admin URL with another database name."""
        base, _, query = self.admin_url.partition("?")
        head = base.rsplit("/", 1)[0]
        return f"{head}/{dbname}" + (f"?{query}" if query else "")

    def _admin(self) -> Any:
        conn = driver().connect(self.admin_url, connect_timeout=10)
        conn.autocommit = True
        return conn

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; returns its URL."""
        name = f"coachctl_{prefix}_{uuid.uuid4().hex[:12]}"
        conn = self._admin()
        try:
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.partition("?")[0].rsplit("/", 1)[1]
        conn = self._admin()
        try:
            with conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            conn.close()


def wait_ready(url: str, timeout: float = 10.0) -> None:
    """Until a connection works (the server may still be starting)."""
    psycopg2 = driver()
    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg2.connect(url, connect_timeout=2).close()
            return
        except psycopg2.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
