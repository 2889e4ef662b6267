"""coachctl: turn runbooks into automation that earns trust step by step."""

from __future__ import annotations

__version__ = "0.1.0"
