# Shared by bench/cluster and bench/cluster_join (sourced, not run):
# three routed nats-servers and bavard nodes on loopback, in a temporary
# directory, all stopped on exit. Expects $root and $build.

nats_bin="$(command -v nats-server || echo /usr/sbin/nats-server)"
[[ -x "$nats_bin" ]] || { echo "nats-server not found (apt-get install nats-server)" >&2; exit 1; }
[[ $build == 1 ]] && cargo build --release --quiet
bavard="$root/target/release/bavard"

work="$(mktemp -d)"
pids=()
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
trap 'stop_all; rm -rf "$work"' EXIT

# CPU seconds (user + system) of the given pids, from /proc.
cpu() {
  local total=0 p
  for p in "$@"; do
    [[ -r /proc/$p/stat ]] || continue
    total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  python3 -c "print($total / $(getconf CLK_TCK))"
}

wait_port() {
  for _ in $(seq 1 300); do
    (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "port $1 never opened" >&2
  exit 1
}

# start_nats DIR: three routed nats-servers (client ports 4241-4243), their
# stores in DIR; their pids in nats_pids.
start_nats() {
  local run="$1" i
  nats_pids=()
  for i in 1 2 3; do
    cat >"$run/nats$i.conf" <<CONF
server_name: nats$i
listen: 127.0.0.1:424$i
jetstream { store_dir: "$run/js$i" }
cluster {
  name: bavard
  listen: 127.0.0.1:624$i
  routes: [nats://127.0.0.1:6241, nats://127.0.0.1:6242, nats://127.0.0.1:6243]
}
CONF
    "$nats_bin" -c "$run/nats$i.conf" >"$run/nats$i.log" 2>&1 &
    pids+=($!) nats_pids+=($!)
  done
  for i in 1 2 3; do wait_port "424$i"; done
}

# start_node DIR I CLUSTERED [RUST_LOG]: bavard node nI, IRC on port 668I,
# clustered on the servers of start_nats when CLUSTERED is 1; returns once
# it serves. Its pid is added to node_pids, its log is DIR/nI.log.
start_node() {
  local run="$1" i="$2" cluster=""
  if [[ $3 == 1 ]]; then
    cluster="$(printf '[cluster]\nnats = ["nats://127.0.0.1:4241", "nats://127.0.0.1:4242", "nats://127.0.0.1:4243"]\nnode = "n%s"' "$i")"
  fi
  cat >"$run/n$i.toml" <<CONF
[listeners]
irc = "127.0.0.1:668$i"
line = "off"
http = "off"
line_tls = "off"
irc_tls = "off"
[flood]
enabled = false
[storage]
path = "$run/n$i.db"
$cluster
CONF
  RUST_LOG="${4:-warn,bavard::net::listeners=info}" "$bavard" serve --config "$run/n$i.toml" >"$run/n$i.log" 2>&1 &
  pids+=($!) node_pids+=($!)
  # Its port is bound at once; it serves once it has joined the cluster.
  for _ in $(seq 1 600); do grep -q "listening" "$run/n$i.log" && break; sleep 0.1; done
  grep -q "listening" "$run/n$i.log" || { echo "node n$i never served" >&2; exit 1; }
}
