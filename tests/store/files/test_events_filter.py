"""The events log's kind filter: lines are skipped unparsed only when they cannot match."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coachctl.store.files import events as log


def test_an_escaped_kind_is_still_found_and_garbage_is_still_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(
        b'{"event":"decision","n":1}\n'
        b'{"event": "level\\u005fchanged", "n": 2}\n'  # written by another JSON writer
        b'{"event":"level_changed","n":3}\n'
        b'not json "level_changed"\n'
        b"\n"
        b'{"n":4,"note":"level_changed"}\n'
        b'["level_changed"]\n'
        b'{"event":"level_changed","n":5}'  # torn: left for the next read
    )
    parsed: list[bytes] = []
    real = json.loads

    def counting(raw: bytes) -> object:
        parsed.append(raw)
        return real(raw)

    monkeypatch.setattr(log.json, "loads", counting)
    got = list(log.read(path, "", ["level_changed"]))
    assert [e["n"] for e, _ in got] == [2, 3]
    # the decision line holds neither the kind nor a backslash: never parsed
    assert not any(b'"decision"' in raw for raw in parsed)
    ends = [c for _, c in log.read(path, "")]
    assert [c for _, c in got] == [ends[1], ends[2]]
    parsed.clear()
    assert [e["n"] for e, _ in log.read(path, "", ["decision"])] == [1]
    assert len(parsed) == 2  # the decision line and the escaped line
