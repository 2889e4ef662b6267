"""Finding workflow files: the home's list, and what a workflow reference names (CONTRACT §1).

Apart from loading because it is about the file system (permissions, symlinks out of the
home), not about a file's content. Errors are UsageError: exit 2, never "not found" on doubt.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from coachctl.engine.workflow import ID_RE
from coachctl.errors import UsageError


def find_workflows(home: Path) -> list[Path]:
    """The home's workflow files (`workflows/*.yaml|*.yml`), sorted by file name."""
    folder = Path(home) / "workflows"
    root = os.path.realpath(home)
    try:
        if not folder.is_dir():
            return []
        found = [
            p
            for p in folder.iterdir()
            if p.suffix in (".yaml", ".yml")
            and p.is_file()
            and os.path.commonpath([os.path.realpath(p), root]) == root
        ]
    except OSError as exc:  # exit 2: `readiness` must fail closed, never say "not ready"
        raise UsageError(f"cannot read {folder}: {_reason(exc)}") from None
    return sorted(found, key=lambda p: p.name)


def _reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    return exc.strerror or str(exc)


def resolve_workflow_path(ref: str, home: Path) -> Path:
    """A workflow reference (CONTRACT §1): an existing file, else an id in `home/workflows/`.

    An id never leaves the workflows folder: only ids matching ID_RE (no `/`, no leading dot)
    are looked up there.
    """
    if ref and os.path.isfile(ref):
        return Path(ref)
    if ID_RE.match(ref):
        for suffix in (".yaml", ".yml"):
            candidate = Path(home) / "workflows" / f"{ref}{suffix}"
            try:
                found = candidate.is_file()
            except OSError as exc:  # e.g. workflows/ without search permission
                if exc.errno != errno.ENAMETOOLONG:  # too long to be a file: no such workflow
                    raise UsageError(f"cannot read {candidate.parent}: {_reason(exc)}") from None
                found = False
            if found:
                real, root = os.path.realpath(candidate), os.path.realpath(home)
                if os.path.commonpath([real, root]) != root:
                    raise UsageError(f"refused: {candidate} is a symlink pointing out of {home}")
                return candidate
    raise UsageError(f"unknown workflow: {ref} (no file, and no workflows/{ref}.yaml in {home})")
