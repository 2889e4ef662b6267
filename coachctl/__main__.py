"""`python -m coachctl` runs the same entry point as the console script."""

from __future__ import annotations

from coachctl.cli import main

if __name__ == "__main__":
    main()
