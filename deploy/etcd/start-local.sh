#!/usr/bin/env bash
# Start a 3-member etcd cluster on loopback for ha-sc, for trying things out and
# tests (see README.md for production), with the limits README.md gives for large stores
# (pass --etcd-max-txn-ops 1024 to sc run). It runs in the foreground: Ctrl-C or a
# SIGTERM to this script stops the three members; each member's PID is also in
# DATA_DIR/<name>.pid, its log in DATA_DIR/<name>.log.
#
#   deploy/etcd/start-local.sh [--tls] [DATA_DIR]          # default ./etcd-local
#   ha-sc sc run --backend etcd --etcd-endpoint 127.0.0.1:2379 \
#       --etcd-endpoint 127.0.0.1:22379 --etcd-endpoint 127.0.0.1:32379 ...
#
# --tls: client and peer traffic over TLS, client certificates required. The script
# makes a CA and certificates with openssl in DATA_DIR/tls (kept for the next start):
# ca.crt, member.crt/.key (server and peer, for 127.0.0.1 and localhost) and
# client.crt/.key (CN root); it prints the `sc run` flags that use them.
#
# Environment: ETCD_CLIENT_PORTS and ETCD_PEER_PORTS (three ports each, default
# "2379 22379 32379" and "2380 22380 32380"), ETCD_BIN and ETCDCTL_BIN (default
# from PATH), ETCD_START_TIMEOUT (seconds to wait for all three to be healthy, 30).
set -euo pipefail

tls=0
if [[ ${1:-} == --tls ]]; then
    tls=1
    shift
fi
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

# A CA, one certificate for the members (server and peer) and one for clients.
make_certificates() {
    local dir=$1
    mkdir -p "$dir"
    chmod 700 "$dir"
    [[ -f $dir/ca.crt && -f $dir/member.crt && -f $dir/client.crt ]] && return
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
        -subj "/CN=ha-sc local etcd CA" -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
    local name subject usage
    for name in member client; do
        if [[ $name == member ]]; then
            subject="/CN=etcd-member"
            usage="subjectAltName=IP:127.0.0.1,DNS:localhost"$'\n'
            usage+="extendedKeyUsage=serverAuth,clientAuth"
        else
            subject="/CN=root"
            usage="extendedKeyUsage=clientAuth"
        fi
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "$subject" \
            -keyout "$dir/$name.key" -out "$dir/$name.csr" 2>/dev/null
        openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
            -CAcreateserial -days 365 -out "$dir/$name.crt" \
            -extfile <(printf '%s\n' "$usage") 2>/dev/null
        rm -f "$dir/$name.csr"
    done
    chmod 600 "$dir"/*.key
}

scheme=http
tls_flags=()
etcdctl_flags=()
if ((tls)); then
    scheme=https
    pki=$data_dir/tls
    make_certificates "$pki"
    tls_flags=(
        --cert-file "$pki/member.crt" --key-file "$pki/member.key"
        --trusted-ca-file "$pki/ca.crt" --client-cert-auth
        --peer-cert-file "$pki/member.crt" --peer-key-file "$pki/member.key"
        --peer-trusted-ca-file "$pki/ca.crt" --peer-client-cert-auth
    )
    etcdctl_flags=(--cacert "$pki/ca.crt" --cert "$pki/client.crt" --key "$pki/client.key")
fi

names=(etcd-1 etcd-2 etcd-3)
cluster=""
endpoints=""
for i in 0 1 2; do
    cluster+="${cluster:+,}${names[i]}=$scheme://127.0.0.1:${peer_ports[i]}"
    endpoints+="${endpoints:+,}$scheme://127.0.0.1:${client_ports[i]}"
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
    client="$scheme://127.0.0.1:${client_ports[i]}"
    peer="$scheme://127.0.0.1:${peer_ports[i]}"
    "$etcd_bin" \
        --name "$name" \
        --data-dir "$data_dir/$name" \
        --listen-client-urls "$client" --advertise-client-urls "$client" \
        --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
        --initial-cluster "$cluster" \
        --initial-cluster-token ha-sc-local \
        --initial-cluster-state new \
        --max-txn-ops 1024 --quota-backend-bytes 8589934592 \
        --auto-compaction-mode periodic --auto-compaction-retention 1h \
        "${tls_flags[@]}" \
        >"$data_dir/$name.log" 2>&1 &
    pids+=($!)
    echo $! >"$data_dir/$name.pid"
done

health() {
    "$etcdctl_bin" --endpoints "$endpoints" "${etcdctl_flags[@]}" endpoint health
}
deadline=$((SECONDS + timeout))
until health >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
        echo "start-local.sh: the members were not all healthy within ${timeout} s" >&2
        health >&2 || true
        exit 1
    fi
    sleep 0.5
done
flags="--etcd-endpoint ${endpoints//,/ --etcd-endpoint } --etcd-max-txn-ops 1024"
if ((tls)); then
    flags+=" --etcd-ca $pki/ca.crt --etcd-cert $pki/client.crt --etcd-key $pki/client.key"
fi
echo "etcd cluster healthy: $flags"
wait "${pids[@]}"
