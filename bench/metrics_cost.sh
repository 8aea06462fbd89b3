#!/usr/bin/env bash
# The cost of the HTTP listener and /metrics under saturation: `bavard bench
# rooms` (1,000 clients in 100 rooms, a window of 20 messages per sender) on
# a fresh server with the HTTP listener off, on, and on with /metrics scraped
# every second, alternating, ROUNDS times (docs/performance.md, "/metrics").
#
#   bash bench/metrics_cost.sh [ROUNDS]        # default 3; needs curl
#   BAVARD=path bash bench/metrics_cost.sh     # another binary
#
# Prints each run's deliveries, server CPU seconds and deliveries per server
# CPU-second. The server uses bench/bavard.toml with a database in a
# temporary directory, its IRC and HTTP listeners on 127.0.0.1 port 0.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BAVARD=${BAVARD:-$ROOT/target/release/bavard}
ROUNDS=${1:-3}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/bavard-metrics.XXXXXX")
SERVER=""
SCRAPER=""
cleanup() {
  [ -n "$SCRAPER" ] && kill "$SCRAPER" 2>/dev/null
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT

# port KIND: the port the server logged for its KIND listener.
port() {
  sed -n "s/.*listening dialect=$1 addr=[^ ]*:\([0-9]*\).*/\1/p" "$TMP/log" | head -n1
}

run() {
  local mode=$1 http=off irc="" i
  [ "$mode" = off ] || http=127.0.0.1:0
  rm -f "$TMP"/bavard.db*
  cp "$ROOT/bench/bavard.toml" "$TMP/bavard.toml"
  printf '[storage]\npath = "%s/bavard.db"\n' "$TMP" >>"$TMP/bavard.toml"
  "$BAVARD" serve --config "$TMP/bavard.toml" --irc 127.0.0.1:0 --line off --http "$http" \
    --log-level info 2>"$TMP/log" &
  SERVER=$!
  for i in $(seq 100); do
    irc=$(port irc)
    [ -n "$irc" ] && { [ "$mode" = off ] || [ -n "$(port http)" ]; } && break
    kill -0 "$SERVER" 2>/dev/null || { cat "$TMP/log" >&2; exit 1; }
    sleep 0.1
  done
  [ -n "$irc" ] || { echo "the server logged no IRC port" >&2; exit 1; }
  http=127.0.0.1:$(port http)
  if [ "$mode" = scrape ]; then
    (while sleep 1; do curl -s "http://$http/metrics" >/dev/null || true; done) &
    SCRAPER=$!
  fi
  local out
  out=$("$BAVARD" bench rooms --clients 1000 --rooms 100 --window 20 --drain 30 --size 100 \
    --duration 10 --target "127.0.0.1:$irc" --server-pid "$SERVER" 2>&1)
  if [ -n "$SCRAPER" ]; then kill "$SCRAPER"; wait "$SCRAPER" 2>/dev/null || true; SCRAPER=""; fi
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=""
  printf '%-7s %s | %s | %s\n' "$mode" \
    "$(grep -E '^deliveries' <<<"$out" | sed 's/  */ /g')" \
    "$(grep -E '^server +pid' <<<"$out" | sed 's/.*: \([0-9.]*\) CPU s.*/\1 CPU s/')" \
    "$(grep -E '^per server CPU s' <<<"$out" | sed 's/  */ /g')"
}

for r in $(seq "$ROUNDS"); do
  echo "== round $r, load $(cut -d' ' -f1-3 /proc/loadavg)"
  for mode in off scrape on; do run "$mode"; done
done
