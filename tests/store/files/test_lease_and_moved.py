"""The file store's runner lease (an flock held while a step runs) and its moved marker."""

from __future__ import annotations

from pathlib import Path

import pytest

from coachctl.engine.stores import file_store
from coachctl.errors import ConflictError
from tests.reliability._helpers import popen_python

HOLD = r"""
import sys, time
from pathlib import Path
from coachctl.engine.stores import file_store
with file_store(Path(sys.argv[1])).lease(sys.argv[2], sys.argv[3]):
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_lease_is_alive_while_its_holder_runs_and_not_after_it_died(tmp_path: Path) -> None:
    home = tmp_path / "h"
    store = file_store(home)
    assert store.lease_alive("s1", "tok") is None  # never taken here: cannot tell
    holder = popen_python(HOLD, str(home), "s1", "tok")
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        assert store.lease_alive("s1", "tok") is True
        assert store.lease_alive("s1", "another run") is None
        with pytest.raises(ConflictError), store.lease("s1", "mine"):
            pass
    finally:
        holder.kill()
        holder.wait(10)
    assert store.lease_alive("s1", "tok") is False  # its holder is gone: interrupted
    with store.lease("s1", "mine"):
        assert file_store(home).lease_alive("s1", "mine") is True
    assert store.lease_alive("s1", "mine") is False


def test_a_moved_store_refuses_writes_naming_the_new_one(tmp_path: Path) -> None:
    from tests.reliability._helpers import run, start

    home = tmp_path / "home"
    (home / "workflows").mkdir(parents=True)
    (home / "workflows" / "w.yaml").write_text("id: w\nsteps:\n  - id: s\n    run: 'true'\n")
    sid = start(home, "w")
    file_store(home).mark_moved("postgres store postgresql://db.example/coach")
    res = run(home, "decide", sid, "skip")
    assert res.returncode == 2
    assert res.stderr == (
        f"coachctl: file store {home / 'sessions'} was moved to "
        "postgres store postgresql://db.example/coach: use that store (--store)\n"
    )
    assert run(home, "show", sid).returncode == 0  # reading stays possible
    assert run(home, "coach", "w", "--no-input").returncode == 2
