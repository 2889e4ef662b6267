"""The file store's events log: `sessions/events.jsonl`, appended under its own lock.

A cursor is the byte offset just past an event's line ("" = 0). Reading is a stream:
one line at a time from the offset, so a 1 GB log costs neither memory nor a wait for the
first line; a torn last line (a writer mid-append, or one killed) is left for later.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from coachctl.errors import StateError, StorageError
from coachctl.store.files.fs import NOFOLLOW, NOT_REGULAR, open_read, os_reason

CHUNK = 1 << 16
SCAN_BLOCK = 1 << 20  # bytes searched at once when only some kinds are read


def encode(events: Sequence[Mapping[str, Any]]) -> bytes:
    return "".join(
        json.dumps(e, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n"
        for e in events
    ).encode("utf-8")


def append(path: Path, payload: bytes) -> None:
    """Append whole lines (the caller holds the events lock); a torn last line left by a
    crash is closed off first, so it never swallows the next event."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | NOFOLLOW, 0o600)
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {os_reason(exc)}") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # a FIFO would take the lines, then block
            raise OSError(errno.EINVAL, NOT_REGULAR)
        size = st.st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            payload = b"\n" + payload
        os.write(fd, payload)
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {os_reason(exc)}") from exc
    finally:
        os.close(fd)


def offset_of(cursor: str) -> int:
    if not cursor:
        return 0
    try:
        value = int(cursor)
    except ValueError:
        raise StateError(f"not an events cursor of a file store: {cursor!r}") from None
    return max(value, 0)


def size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def needles(kinds: Collection[str]) -> tuple[bytes, ...]:
    """Bytes one of whose presence a line needs to hold an event of one of `kinds`.

    A JSON string without a backslash is its UTF-8 bytes as they are, so a line holding
    neither a kind's bytes nor any backslash cannot hold that kind: it is skipped unparsed.
    Every other line is parsed and checked, so the filter stays exact.
    """
    return (b"\\", *(k.encode("utf-8", "surrogatepass") for k in kinds))


def read(
    path: Path, cursor: str = "", kinds: Collection[str] | None = None
) -> Iterator[tuple[dict[str, Any], str]]:
    """Events after `cursor` (only those whose "event" is one of `kinds`, when given), each
    with the cursor past it; stops at the current end.

    A line that does not parse (torn by a crash, or garbage) is skipped; a last line
    without its newline is left for the next read, since a writer may be mid-append. A log
    shorter than the cursor (rewritten by a repair) is read from its start.
    """
    wanted = None if kinds is None else frozenset(kinds)
    marks = needles(wanted) if wanted is not None else ()
    offset = offset_of(cursor)
    try:
        fh = open(path, "rb", opener=open_read)  # noqa: SIM115
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StateError(f"cannot read {path}: {os_reason(exc, True)}") from exc
    with fh:
        if os.fstat(fh.fileno()).st_size < offset:
            offset = 0
        fh.seek(offset)
        # Every line is a candidate for no filter, or for the empty kind (found anywhere).
        every = wanted is None or "" in wanted
        lines = _lines(fh, offset) if every else _candidates(fh, offset, marks)
        for line, offset in lines:
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if not isinstance(obj, dict):
                continue
            kind = obj.get("event")
            if wanted is None or (isinstance(kind, str) and kind in wanted):
                yield obj, str(offset)


def _lines(fh: BinaryIO, offset: int) -> Iterator[tuple[bytes, int]]:
    """Each whole line from `offset`, with the offset past it (a torn last one is left)."""
    for line in fh:
        if not line.endswith(b"\n"):
            return  # torn or still being written: the next read sees it whole
        offset += len(line)
        yield line, offset


def _candidates(fh: BinaryIO, offset: int, marks: Sequence[bytes]) -> Iterator[tuple[bytes, int]]:
    """The whole lines from `offset` holding one of `marks`, with the offset past each.

    Searched for a big block at a time (`bytes.find` runs at C speed), not line by line:
    the report wants the level changes, 1 line in 1,000 of the log.
    """
    tail = b""
    while True:
        block = fh.read(SCAN_BLOCK)
        if not block:
            return  # what is left in `tail` is torn or still being written
        buf = tail + block
        end = buf.rfind(b"\n") + 1
        starts: set[int] = set()
        for mark in marks:
            at = buf.find(mark, 0, end)
            while at >= 0:
                start = buf.rfind(b"\n", 0, at) + 1
                starts.add(start)
                at = buf.find(mark, buf.find(b"\n", at) + 1, end)
        for start in sorted(starts):
            stop = buf.find(b"\n", start) + 1
            yield buf[start:stop], offset + stop
        offset += end
        tail = buf[end:]
