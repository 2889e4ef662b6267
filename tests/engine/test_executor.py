"""The executor: exit codes, live streaming with a bounded tail, timeouts."""

from __future__ import annotations

import time

from coachctl.engine.executor import TAIL_BYTES, run_command


def test_success_and_output() -> None:
    chunks: list[bytes] = []
    r = run_command("echo hi; echo err >&2", stream=chunks.append)
    assert r.ok and r.exit_code == 0
    assert b"".join(chunks) == b"hi\nerr\n"
    assert r.output_tail == "hi\nerr\n"
    assert r.duration >= 0


def test_failure_exit_code_is_kept() -> None:
    r = run_command("exit 7")
    assert not r.ok and r.exit_code == 7


def test_tail_is_bounded_and_decoded_with_replacement() -> None:
    r = run_command("head -c 20000 /dev/zero | tr '\\0' x; printf '\\377'")
    assert len(r.output_tail.encode("utf-8")) <= TAIL_BYTES + 3
    assert r.output_tail.endswith("\ufffd")


def test_timeout_is_a_failure_and_ends_the_command() -> None:
    start = time.monotonic()
    r = run_command("sleep 30", timeout=0.5)
    assert r.timed_out and not r.ok
    assert time.monotonic() - start < 5


def test_env_and_cwd(tmp_path: object) -> None:
    r = run_command(
        'printf %s "$X"; pwd', env={"X": "v", "PATH": "/usr/bin:/bin"}, cwd=str(tmp_path)
    )
    assert r.output_tail == f"v{tmp_path}\n"


def test_unstartable_cwd_is_reported_not_raised(tmp_path: object) -> None:
    r = run_command("true", cwd="/nonexistent/dir/xyz")
    assert not r.ok and r.error is not None
