#!/usr/bin/env bash
# Start a 3-member etcd cluster on loopback for ha-sc (no TLS: for trying things
# out and tests, never for production; see README.md). It runs in the foreground:
# Ctrl-C or a SIGTERM to this script stops the three members; each member's PID is
# also in DATA_DIR/<name>.pid, its log in DATA_DIR/<name>.log.
#
#   deploy/etcd/start-local.sh [DATA_DIR]          # default ./etcd-local
#   ha-sc sc run --backend etcd --etcd-endpoint 127.0.0.1:2379 \
#       --etcd-endpoint 127.0.0.1:22379 --etcd-endpoint 127.0.0.1:32379 ...
#
# Environment: ETCD_CLIENT_PORTS and ETCD_PEER_PORTS (three ports each, default
# "2379 22379 32379" and "2380 22380 32380"), ETCD_BIN and ETCDCTL_BIN (default
# from PATH), ETCD_START_TIMEOUT (seconds to wait for all three to be healthy, 30).
set -euo pipefail

data_dir=${1:-./etcd-local}
read -r -a client_ports <<<"${ETCD_CLIENT_PORTS:-2379 22379 32379}"
read -r -a peer_ports <<<"${ETCD_PEER_PORTS:-2380 22380 32380}"
etcd_bin=${ETCD_BIN:-etcd}
etcdctl_bin=${ETCDCTL_BIN:-etcdctl}
timeout=${ETCD_START_TIMEOUT:-30}
if [[ ${#client_ports[@]} -ne 3 || ${#peer_ports[@]} -ne 3 ]]; then
    echo "start-local.sh: ETCD_CLIENT_PORTS and ETCD_PEER_PORTS need three ports each" >&2
    exit 2
fi

names=(etcd-1 etcd-2 etcd-3)
cluster=""
endpoints=""
for i in 0 1 2; do
    cluster+="${cluster:+,}${names[i]}=http://127.0.0.1:${peer_ports[i]}"
    endpoints+="${endpoints:+,}127.0.0.1:${client_ports[i]}"
done

pids=()
stop() {
    trap - INT TERM EXIT
    if [[ ${#pids[@]} -gt 0 ]]; then
        echo "stopping etcd members ${pids[*]}"
        kill -TERM "${pids[@]}" 2>/dev/null || true
        wait "${pids[@]}" 2>/dev/null || true
    fi
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
trap stop EXIT

mkdir -p "$data_dir"
for i in 0 1 2; do
    name=${names[i]}
    client="http://127.0.0.1:${client_ports[i]}"
    peer="http://127.0.0.1:${peer_ports[i]}"
    "$etcd_bin" \
        --name "$name" \
        --data-dir "$data_dir/$name" \
        --listen-client-urls "$client" --advertise-client-urls "$client" \
        --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
        --initial-cluster "$cluster" \
        --initial-cluster-token ha-sc-local \
        --initial-cluster-state new \
        >"$data_dir/$name.log" 2>&1 &
    pids+=($!)
    echo $! >"$data_dir/$name.pid"
done

deadline=$((SECONDS + timeout))
until "$etcdctl_bin" --endpoints "$endpoints" endpoint health >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
        echo "start-local.sh: the members were not all healthy within ${timeout} s" >&2
        "$etcdctl_bin" --endpoints "$endpoints" endpoint health >&2 || true
        exit 1
    fi
    sleep 0.5
done
echo "etcd cluster healthy: --etcd-endpoint ${endpoints//,/ --etcd-endpoint }"
wait "${pids[@]}"
