"""`coachctl store status|upgrade` on a real PostgreSQL server, masked URLs, timeouts."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from coachctl.store.postgres import schema
from coachctl.store.postgres.connect import mask
from tests.conftest import coachctl_cmd


def run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **(env or {})}
    # coachctl never creates a home: these commands run in the test's (empty) one.
    Path(full["COACHCTL_HOME"]).mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [*coachctl_cmd(), *args], capture_output=True, text=True, env=full, timeout=timeout
    )


def with_password(url: str, password: str) -> str:
    return url.replace("postgres@", f"postgres:{password}@", 1)


def test_status_of_a_new_database_names_the_fix_then_upgrade_creates_the_schema(
    pg_empty: str,
) -> None:
    before = run("--store", pg_empty, "store", "status", "--format", "json")
    assert before.returncode == 0, before.stderr
    info = json.loads(before.stdout)
    assert info["kind"] == "postgres" and info["user"] == "postgres"
    assert (info["schema_version"], info["schema_ok"]) == (0, False)
    assert info["fix"] == "run `coachctl store upgrade`"

    up = run("--store", pg_empty, "store", "upgrade")
    assert up.returncode == 0, up.stderr
    assert f"from version 0 to {schema.latest()}" in up.stdout
    again = run("--store", pg_empty, "store", "upgrade")
    assert "already at version" in again.stdout

    info = json.loads(run("--store", pg_empty, "store", "status", "--format", "json").stdout)
    assert (info["schema_version"], info["schema_ok"]) == (schema.latest(), True)
    assert info["counts"] == {"sessions": 0, "decisions": 0, "events": 0, "packs": 0}


def test_concurrent_upgrades_apply_each_migration_once(pg_empty: str) -> None:
    Path(os.environ["COACHCTL_HOME"]).mkdir(parents=True, exist_ok=True)
    procs = [
        subprocess.Popen(
            [*coachctl_cmd(), "--store", pg_empty, "store", "upgrade"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outs
    assert sum("upgraded from version 0" in out for out, _ in outs) == 1, outs
    import psycopg2

    with psycopg2.connect(pg_empty) as conn, conn.cursor() as cur:
        cur.execute("SELECT version FROM coachctl_schema ORDER BY version")
        assert [r[0] for r in cur.fetchall()] == [n for n, _ in schema.migrations()]


def test_a_newer_schema_says_upgrade_coachctl(pg_url: str) -> None:
    import psycopg2

    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO coachctl_schema (version) VALUES (999)")
    info = json.loads(run("--store", pg_url, "store", "status", "--format", "json").stdout)
    assert info["fix"] == "upgrade coachctl" and not info["schema_ok"]
    up = run("--store", pg_url, "store", "upgrade")
    assert up.returncode == 2
    assert "newer than this coachctl knows" in up.stderr and "upgrade coachctl" in up.stderr


def test_the_password_in_the_url_is_never_printed(pg_empty: str) -> None:
    # The test cluster trusts local connections, so a wrong password still gets in.
    url = with_password(pg_empty, "s3cr3t-pw")
    for args in (
        ("store", "status"),
        ("store", "upgrade"),
        ("store", "status", "--format", "json"),
    ):
        done = run("--store", url, *args)
        assert done.returncode == 0, done.stderr
        assert "s3cr3t-pw" not in done.stdout + done.stderr
        assert "postgres:***@" in done.stdout
    refused = run("--store", "postgresql://bob:hunter22@127.0.0.1:1/db", "store", "status")
    assert refused.returncode == 2
    assert "hunter22" not in refused.stderr and "bob:***@" in refused.stderr
    assert refused.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://u:pw@h/db", "postgresql://u:***@h/db"),
        (
            "postgres://u:p%40ss@h:5432/db?sslmode=require",
            "postgres://u:***@h:5432/db?sslmode=require",
        ),
        ("postgresql://h/db?user=u&password=topsecret", "postgresql://h/db?user=u&password=***"),
        ("host=h password='a b c' dbname=x", "host=h password=*** dbname=x"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
    ],
)
def test_mask(text: str, expected: str) -> None:
    assert mask(text) == expected


def test_mask_removes_the_literal_password_from_a_driver_message() -> None:
    assert mask('FATAL: bad "pw-9f2"', "postgresql://u:pw-9f2@h/db") == 'FATAL: bad "***"'


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A loopback port that accepts connections and never answers (a hung server)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(srv.getsockname()[1])
    stop.set()
    thread.join(2)
    for s in held:
        s.close()
    srv.close()


def test_an_unreachable_database_is_exit_2_within_the_connect_timeout(
    silent_server: int, tmp_path: Path
) -> None:
    url = f"postgresql://u@127.0.0.1:{silent_server}/db?connect_timeout=2"
    began = time.monotonic()
    done = run("--store", url, "store", "status", timeout=30)
    took = time.monotonic() - began
    assert done.returncode == 2, done.stderr
    assert "cannot reach the postgres store" in done.stderr and "timeout" in done.stderr
    assert took < 5, took
