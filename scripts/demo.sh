#!/usr/bin/env bash
# Set everything up (a venv in .venv with the project), copy the bundled workflows into a
# throwaway home, and start a coaching session on workflows/hello.yaml. With a terminal you
# step through it with single keys; without one it prints the first suggestion and how to
# decide it. The home is kept so you can `coachctl --home DIR resume ID` later; it is printed.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .

home=$(mktemp -d "${TMPDIR:-/tmp}/coachctl-demo.XXXXXX")
cp -R workflows "$home/"
echo "coachctl demo home: $home   (export COACHCTL_HOME=$home to keep using it)"
export COACHCTL_HOME="$home"
exec .venv/bin/coachctl coach hello "$@"
