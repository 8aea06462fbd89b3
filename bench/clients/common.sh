# Shared helpers for the headless client checks (sourced, not run).
#
# Starts bavard on 127.0.0.1 port 0 with a database of its own in $TMP
# (accounts added with `bavard account add` beforehand, see add_account), a
# netcat-style `line` user over bash's /dev/tcp, and a private tmux server
# (its own socket, so nothing else is touched). Everything started is stopped by `cleanup`, set as the EXIT trap.
# Every wait is bounded.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BAVARD=${BAVARD:-$ROOT/target/release/bavard}
WAIT=${WAIT:-10} # seconds for any single expected thing
TMP=$(mktemp -d "${TMPDIR:-/tmp}/bavard-clients.XXXXXX")
TMUX_SOCK="$TMP/tmux.sock"
SERVER_PID=""
LINE_READER_PID=""
KEEP=${KEEP:-0} # KEEP=1 keeps $TMP (logs, captures) after the run

log() { printf '== %s\n' "$*" >&2; }

cleanup() {
  local rc=$?
  set +e
  if [ -S "$TMUX_SOCK" ]; then
    # Some clients (weechat-headless) outlive their tmux server's SIGHUP:
    # stop what runs in the panes first, then the tmux server.
    local p
    for p in $(tmux -S "$TMUX_SOCK" list-panes -a -F '#{pane_pid}' 2>/dev/null); do
      kill "$p" 2>/dev/null
    done
    sleep 0.3
    for p in $(tmux -S "$TMUX_SOCK" list-panes -a -F '#{pane_pid}' 2>/dev/null); do
      kill -9 "$p" 2>/dev/null
    done
    tmux -S "$TMUX_SOCK" kill-server 2>/dev/null
  fi
  exec 3>&-
  if [ -n "$LINE_READER_PID" ]; then
    kill "$LINE_READER_PID" 2>/dev/null
    wait "$LINE_READER_PID" 2>/dev/null
  fi
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
  fi
  if [ "$rc" -ne 0 ] || [ "$KEEP" = 1 ]; then
    echo "logs kept in $TMP" >&2
  else
    rm -rf "$TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
  printf 'FAIL: %s\n' "$*" >&2
  if [ -n "${CLIENT_SESSION:-}" ] && [ -S "$TMUX_SOCK" ]; then
    echo "--- last screen of $CLIENT_SESSION:" >&2
    tmux -S "$TMUX_SOCK" capture-pane -p -t "$CLIENT_SESSION" 2>/dev/null | sed '/^$/d' | tail -n 25 >&2
  fi
  if [ -f "$TMP/line.out" ]; then
    echo "--- last lines of the line user:" >&2
    tail -n 15 "$TMP/line.out" >&2
  fi
  exit 1
}

need() {
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || { echo "SKIP: $c is not installed" >&2; exit 77; }
  done
}

build_bavard() {
  if [ ! -x "$BAVARD" ]; then
    log "building bavard (cargo build --release)"
    (cd "$ROOT" && cargo build --release -q)
  fi
}

# The server's configuration: only its database, in $TMP.
CONFIG="$TMP/bavard.toml"
printf '[storage]\npath = "%s"\n' "$TMP/bavard.db" >"$CONFIG"

# add_account NAME PASSWORD: registers an account the way an administrator
# does, with the password on stdin, in the database the server will use.
add_account() {
  build_bavard
  printf '%s\n' "$2" | "$BAVARD" account add "$1" --config "$CONFIG" >/dev/null 2>>"$TMP/account.log" \
    || fail "bavard account add $1 failed"
}

# start_server: runs bavard; sets IRC_PORT and LINE_PORT from its log.
start_server() {
  build_bavard
  "$BAVARD" serve --config "$CONFIG" --line 127.0.0.1:0 --irc 127.0.0.1:0 --http off \
    --log-level info </dev/null >/dev/null 2>"$TMP/bavard.log" &
  SERVER_PID=$!
  local i
  for i in $(seq $((WAIT * 10))); do
    # The address may be followed by more fields (tls=...).
    IRC_PORT=$(sed -n 's/.*listening dialect=irc addr=[^ ]*:\([0-9]*\)\( .*\)\{0,1\}$/\1/p' "$TMP/bavard.log" | head -n1)
    LINE_PORT=$(sed -n 's/.*listening dialect=line addr=[^ ]*:\([0-9]*\)\( .*\)\{0,1\}$/\1/p' "$TMP/bavard.log" | head -n1)
    [ -n "$IRC_PORT" ] && [ -n "$LINE_PORT" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || fail "bavard exited: $(cat "$TMP/bavard.log")"
    sleep 0.1
  done
  [ -n "$IRC_PORT" ] && [ -n "$LINE_PORT" ] || fail "bavard did not log its ports"
  log "bavard pid $SERVER_PID: irc port $IRC_PORT, line port $LINE_PORT"
}

# line_connect NICK: a netcat-style user on fd 3; what it receives goes to
# $TMP/line.out. Waits for the greeting, then sets the nick.
line_connect() {
  exec 3<>"/dev/tcp/127.0.0.1/$LINE_PORT"
  cat <&3 >"$TMP/line.out" &
  LINE_READER_PID=$!
  wait_line "[server] Welcome to Chat Server !"
  line_send "NICK $1"
  wait_line "[server] You are now known as $1"
}

line_send() { printf '%s\n' "$1" >&3; }

# wait_file FILE TEXT [DESC]: waits until FILE has a line containing TEXT.
wait_file() {
  local f=$1 text=$2 i
  for i in $(seq $((WAIT * 10))); do
    if [ -f "$f" ] && grep -qF -- "$text" "$f"; then return 0; fi
    sleep 0.1
  done
  fail "${3:-$f} never showed: $text"
}

# wait_line TEXT: the line user received a line that is exactly TEXT.
wait_line() {
  local i
  for i in $(seq $((WAIT * 10))); do
    if grep -qxF -- "$1" "$TMP/line.out"; then return 0; fi
    sleep 0.1
  done
  fail "the line user never received: $1"
}

# --- tmux --------------------------------------------------------------

tm() { tmux -S "$TMUX_SOCK" "$@"; }

# start_tmux NAME COMMAND...: a detached 160x45 session running COMMAND.
start_tmux() {
  CLIENT_SESSION=$1
  shift
  tm new-session -d -s "$CLIENT_SESSION" -x 160 -y 45 "$@"
}

# keys TEXT: types TEXT and Enter into the client.
keys() {
  tm send-keys -t "$CLIENT_SESSION" -l -- "$1"
  tm send-keys -t "$CLIENT_SESSION" Enter
}

screen() { tm capture-pane -p -t "$CLIENT_SESSION"; }

# wait_screen TEXT: the client's visible screen shows TEXT.
wait_screen() {
  local i
  for i in $(seq $((WAIT * 10))); do
    if screen | grep -qF -- "$1"; then return 0; fi
    sleep 0.1
  done
  fail "the $CLIENT_SESSION screen never showed: $1"
}

# save_screen FILE: the visible screen without its blank lines.
save_screen() {
  screen | grep -v '^ *$' >"$1" || true
}

# Error replies that bavard is known to send to a client and that are
# reported, not fixed here (see docs/clients.md, "Findings"). Extended
# regex matched against the server's raw line; they are printed as KNOWN and
# do not fail the check. Any other 4xx/5xx numeric does.
#  - irssi sends a bare "JOIN :" before CAP END; bavard answers 451.
KNOWN_ERRORS=${KNOWN_ERRORS-' 451 \* :You have not registered$'}

# check_error_numerics FILE REGEX: fails on an error numeric from the server
# (lines of FILE matching REGEX) unless it is a known one.
check_error_numerics() {
  local f=$1 re=$2 bad=0 l
  while IFS= read -r l; do
    if [ -n "$KNOWN_ERRORS" ] && printf '%s\n' "$l" | grep -qE -- "$KNOWN_ERRORS"; then
      echo "KNOWN: $l" >&2
    else
      echo "ERROR NUMERIC: $l" >&2
      bad=1
    fi
  done < <(grep -E -- "$re" "$f" || true)
  [ "$bad" = 0 ] || fail "bavard sent unexpected error numerics (above)"
}
