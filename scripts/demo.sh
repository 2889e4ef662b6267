#!/usr/bin/env bash
# Set everything up (a venv in .venv with the project), copy the bundled workflows into a
# throwaway home, and start a coaching session on workflows/hello.yaml. With a terminal you
# step through it with single keys; without one it prints the first suggestion and how to
# decide it. At the end it prints the one line to paste so that `coachctl` (on PATH) and the
# demo home (COACHCTL_HOME) work in your shell, and how to remove the home.
#
# The pip installs run only when .venv is new or setup.cfg/pyproject.toml changed since the
# last run (a stamp in .venv); their output is shown only if they fail.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd -P)

PY=${PYTHON:-python3}
stamp=.venv/.coachctl-demo-stamp
want=$(cat setup.cfg pyproject.toml | cksum)

quietly() {  # run "$@" with its output kept aside; show it only when it fails
  local log
  log=$(mktemp "${TMPDIR:-/tmp}/coachctl-demo-pip.XXXXXX")
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "demo.sh: failed: $*" >&2
    exit 1
  fi
  rm -f "$log"
}

if [ ! -x .venv/bin/python ]; then
  echo "setting up .venv (once) …"
  "$PY" -m venv .venv
  rm -f "$stamp"
fi
if [ ! -x .venv/bin/coachctl ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing coachctl into .venv …"
  quietly .venv/bin/python -m pip install --quiet --upgrade pip
  quietly .venv/bin/python -m pip install --quiet -e .
  printf '%s\n' "$want" >"$stamp"
fi

home=$(mktemp -d "${TMPDIR:-/tmp}/coachctl-demo.XXXXXX")
cp -R workflows "$home/"
echo "coachctl demo home: $home"
echo

rc=0
COACHCTL_HOME="$home" .venv/bin/coachctl coach hello "$@" || rc=$?

echo
echo "To keep using this demo in your shell (coachctl on PATH, the demo home), paste:"
printf '  export PATH=%q:"$PATH" COACHCTL_HOME=%q\n' "$repo/.venv/bin" "$home"
echo "When you are done with it:  rm -rf $(printf '%q' "$home")"
exit "$rc"
