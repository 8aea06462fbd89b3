#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60). Needs a nightly
# toolchain and cargo-fuzz: `rustup toolchain install nightly && cargo install cargo-fuzz`.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
for t in irc_message irc_mask line_command hub; do
  echo "== $t ($secs s)"
  cargo +nightly fuzz run "$t" -- -max_total_time="$secs" -rss_limit_mb=2048
done
