#!/usr/bin/env bash
# Runs irctest against bavard: the portable selection, then the services one.
#
#   conformance/irctest/run.sh IRCTEST_DIR [portable|services|all] [pytest args...]
#
# IRCTEST_DIR is a checkout of irctest with its Python requirements installed
# (see docs/conformance.md). The script builds bavard (debug profile, unless
# BAVARD_BIN names a binary to use instead) and runs pytest from IRCTEST_DIR
# with this directory on PYTHONPATH. Extra arguments go to pytest, e.g.
# `-n 2` (with pytest-xdist), `-k testListEmpty`, `--junitxml=out.xml`.
# Environment: BAVARD_BIN, CARGO_TARGET_DIR (where cargo builds),
# IRCTEST_DEBUG_LOGS=1 (server and client traffic in the output).
set -euo pipefail

if [ $# -lt 1 ] || [ ! -f "$1/conftest.py" ] || [ ! -d "$1/irctest" ]; then
  echo "usage: $0 IRCTEST_DIR [portable|services|all] [pytest args...]" >&2
  exit 2
fi
irctest_dir=$(cd "$1" && pwd)
which_sel=${2:-all}
shift $(( $# >= 2 ? 2 : 1 ))
case "$which_sel" in
  portable|services|all) ;;
  *) echo "unknown selection: $which_sel (portable, services or all)" >&2; exit 2 ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

if [ -z "${BAVARD_BIN:-}" ]; then
  target=${CARGO_TARGET_DIR:-$repo/target}
  echo "== cargo build (debug) in $target"
  (cd "$repo" && CARGO_TARGET_DIR="$target" cargo build --bin bavard)
  export BAVARD_BIN="$target/debug/bavard"
fi
[ -x "$BAVARD_BIN" ] || { echo "BAVARD_BIN=$BAVARD_BIN is not an executable" >&2; exit 2; }
echo "== bavard: $BAVARD_BIN"

export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"
common='not implementation-specific and not deprecated and not strict'

run_selection() { # name, marker expression; pytest exit 5 (nothing ran) is not an error
  echo "== irctest, $1 selection: -m '$2'"
  local rc=0
  (cd "$irctest_dir" && python3 -m pytest -p no:cacheprovider \
      --controller bavard_controller -m "$2" -rfEs "${extra[@]}") || rc=$?
  [ "$rc" -eq 5 ] && rc=0
  return "$rc"
}

extra=("$@")
status=0
if [ "$which_sel" != services ]; then
  run_selection portable "not services and $common" || status=1
fi
if [ "$which_sel" != portable ]; then
  run_selection services "services and $common" || status=1
fi
exit "$status"
