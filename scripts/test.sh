#!/usr/bin/env bash
# Set everything up (a venv in .venv with the project and its test extras) and run the whole
# suite: lint (ruff), types (mypy --strict), then pytest. Exits non-zero on any failure,
# including pytest collecting no tests (exit 5), which would otherwise look like a pass.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'

echo "== ruff"
.venv/bin/ruff check coachctl tests benchmarks
.venv/bin/ruff format --check coachctl tests benchmarks
echo "== mypy (strict, the package)"
.venv/bin/mypy
echo "== pytest"
set +e
.venv/bin/python -m pytest -q "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure, not a pass" >&2
  exit 1
fi
exit "$rc"
