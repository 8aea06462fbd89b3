#!/usr/bin/env bash
# Starts or stops the IRC servers `bavard bench` is compared against.
#
#   bench/peers/start.sh ngircd|inspircd [--foreground]   start, print the pid
#   bench/peers/start.sh stop ngircd|inspircd|all         stop (by pid file)
#   bench/peers/start.sh pid ngircd|inspircd              print the pid if running
#
# ngIRCd listens on 127.0.0.1:6670, InspIRCd on 127.0.0.1:6671 (see the
# .conf files beside this script). Pid files and logs go to $PEERS_DIR
# (default: ${TMPDIR:-/tmp}/bavard-peers). Install the servers with
#   apt-get install -y ngircd inspircd
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="${PEERS_DIR:-${TMPDIR:-/tmp}/bavard-peers}"
mkdir -p "$dir"

port_of() {
  case "$1" in
    ngircd) echo 6670 ;;
    inspircd) echo 6671 ;;
    *) echo "unknown server: $1 (ngircd or inspircd)" >&2; exit 2 ;;
  esac
}

running_pid() {
  local f="$dir/$1.pid"
  [[ -f "$f" ]] || return 1
  local pid
  pid="$(cat "$f")"
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

cmd_of() {
  case "$1" in
    # -n: stay in the foreground, so that the pid we record is the server's.
    ngircd) echo "ngircd -n -f $here/ngircd.conf" ;;
    # --runasroot: InspIRCd refuses root otherwise (CI and dev boxes run as root).
    inspircd) echo "inspircd --config=$here/inspircd.conf --nofork --nopid --runasroot" ;;
  esac
}

wait_port() {
  local port="$1" i
  for i in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return 0
    fi
    sleep 0.05
  done
  return 1
}

start() {
  local name="$1" fg="${2:-}"
  local port
  port="$(port_of "$name")"
  command -v "$name" >/dev/null || { echo "$name is not installed (apt-get install -y $name)" >&2; exit 1; }
  if pid="$(running_pid "$name")"; then
    echo "$pid"
    return 0
  fi
  # Servers take their descriptor limit from us: allow as many as possible.
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  if [[ "$fg" == "--foreground" ]]; then
    echo "$$" >"$dir/$name.pid"
    # shellcheck disable=SC2046
    exec $(cmd_of "$name")
  fi
  # Run from the state dir: InspIRCd writes relative files there.
  # shellcheck disable=SC2046
  (cd "$dir" && exec $(cmd_of "$name")) >"$dir/$name.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$dir/$name.pid"
  if ! wait_port "$port"; then
    echo "$name did not open 127.0.0.1:$port; see $dir/$name.log" >&2
    kill "$pid" 2>/dev/null || true
    rm -f "$dir/$name.pid"
    exit 1
  fi
  echo "$pid"
}

stop() {
  local name="$1" pid
  if pid="$(running_pid "$name")"; then
    kill "$pid"
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/$name.pid"
}

case "${1:-}" in
  ngircd|inspircd) start "$1" "${2:-}" ;;
  stop)
    case "${2:-all}" in
      all) stop ngircd; stop inspircd ;;
      *) port_of "$2" >/dev/null; stop "$2" ;;
    esac
    ;;
  pid) port_of "${2:-}" >/dev/null; running_pid "$2" ;;
  *) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
