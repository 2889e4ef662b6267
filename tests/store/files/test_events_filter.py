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


@pytest.mark.parametrize("block", [1, 7, 64, 1 << 20])
def test_any_block_size_gives_exactly_the_filtered_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    """Lines cut by a block's end, lines longer than a block, a torn tail, a cursor in the
    middle and the empty kind: the same as reading every line and checking it."""
    monkeypatch.setattr(log, "SCAN_BLOCK", block)
    path = tmp_path / "events.jsonl"
    kinds = ["decision", "level_changed", "", "x", 'q"uote', "n\nl", "caf\u00e9"]
    rows = [
        {"event": kinds[i % len(kinds)], "i": i, "pad": "level" * (i % 13), "s": "\\" * (i % 3)}
        for i in range(300)
    ]
    path.write_bytes(log.encode(rows) + b'garbage "x"\n\n{"event":"x","torn":')
    every = list(log.read(path, ""))
    for wanted in [["level_changed"], ["x", "caf\u00e9"], [""], ['q"uote', "n\nl"], []]:
        want = [(e, c) for e, c in every if e["event"] in wanted]
        assert list(log.read(path, "", wanted)) == want
        middle = every[150][1]
        assert list(log.read(path, middle, wanted)) == [(e, c) for e, c in want if e["i"] > 150]
