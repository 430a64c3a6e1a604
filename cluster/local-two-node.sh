#!/usr/bin/env bash
# A two-node Ray cluster on this machine, one `ray job submit` of US-GAN on it, then the cluster stops.
#
#   cluster/local-two-node.sh                          # demo preset on the synthetic faces
#   cluster/local-two-node.sh --preset tiny            # any python -m usgan.train flags are passed on
#   KEEP=1 cluster/local-two-node.sh                   # leave the cluster running afterwards
#
# Rehearses what a real cluster does: each node has its own --temp-dir (its own sockets, logs and object
# store), token authentication is on (RAY_AUTH_MODE=token, as Ray >= 2.59 wants for local clusters) with a
# fresh token in the environment of every process, and the code reaches the job through --working-dir.
# Results go to $RUNS/$NAME (default ./runs/two-node-demo); both "nodes" see that path because they share
# this machine's disk; on real nodes it would be NFS or s3://.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${RUNS:-$PWD/runs}"
NAME="${NAME:-two-node-demo}"
CPUS_PER_NODE="${CPUS_PER_NODE:-1}"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
GCS_PORT="${GCS_PORT:-$(free_port)}"
DASH_PORT="${DASH_PORT:-$(free_port)}"

export RAY_AUTH_MODE=token
export RAY_AUTH_TOKEN="${RAY_AUTH_TOKEN:-$(python3 -c 'import secrets; print(secrets.token_hex(16))')}"
unset RAY_ADDRESS
# Unix socket paths are capped at 107 bytes: keep the temp dirs short and under /tmp.
HEAD_TMP="$(mktemp -d /tmp/rhXXXX)"
NODE_TMP="$(mktemp -d /tmp/rnXXXX)"

cleanup() {
  if [ "${KEEP:-0}" = "1" ]; then
    echo "[two-node] left running: RAY_AUTH_TOKEN=$RAY_AUTH_TOKEN ray job list --address http://127.0.0.1:$DASH_PORT"
    echo "[two-node] stop with:    ray stop --force && rm -rf $HEAD_TMP $NODE_TMP"
    return
  fi
  ray stop --force >/dev/null 2>&1 || true
  rm -rf "$HEAD_TMP" "$NODE_TMP"
}
trap cleanup EXIT

echo "[two-node] head: GCS 127.0.0.1:$GCS_PORT, dashboard http://127.0.0.1:$DASH_PORT, temp dir $HEAD_TMP"
ray start --head --port="$GCS_PORT" --num-cpus="$CPUS_PER_NODE" --include-dashboard=true \
  --dashboard-port="$DASH_PORT" --temp-dir="$HEAD_TMP" --disable-usage-stats
echo "[two-node] second node: temp dir $NODE_TMP"
ray start --address="127.0.0.1:$GCS_PORT" --num-cpus="$CPUS_PER_NODE" --temp-dir="$NODE_TMP" --disable-usage-stats

mkdir -p "$RUNS"
ray job submit --address "http://127.0.0.1:$DASH_PORT" --working-dir . -- \
  python -m usgan.train --storage "$RUNS" --name "$NAME" "$@"
