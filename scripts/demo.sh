#!/usr/bin/env bash
# `make demo`: the main job end to end on the built-in tiny model. A daemon on a free loopback port, a
# 2 samplers x 3 step counts x 2 seeds sweep through cauldronctl with its progress bar, then a clean stop.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export CAULDRON_DATA_DIR="$PWD/.demo/data"
export HF_HUB_OFFLINE=1
mkdir -p "$CAULDRON_DATA_DIR"

"$BIN/cauldrond" models create-tiny

PORT=$("$BIN/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export CAULDRON_URL="http://127.0.0.1:$PORT"
"$BIN/cauldrond" --port "$PORT" --log-level WARNING &
DAEMON=$!
trap 'kill -TERM $DAEMON 2>/dev/null || true' EXIT

for _ in $(seq 1 100); do
  if "$BIN/python" -c "import urllib.request,sys; urllib.request.urlopen('$CAULDRON_URL/healthz', timeout=1)" 2>/dev/null; then
    break
  fi
  sleep 0.2
done

echo "== cauldrond is up on $CAULDRON_URL; queueing the sweep =="
"$BIN/cauldronctl" sweep --name "demo: Euler vs Euler a" \
  --prompt "a lighthouse on a cliff at dusk, oil painting" \
  --sampler "Euler" --sampler "Euler a" --steps 4,8,12 --seed 1,2 \
  --width 128 --height 128 --watch

echo "== a labelled comparison grid (samplers across, steps down) for each seed =="
EXPERIMENT=$("$BIN/cauldronctl" --json experiments list | "$BIN/python" -c 'import json,sys; print(json.load(sys.stdin)["experiments"][0]["id"])')
"$BIN/cauldronctl" grid "$EXPERIMENT" --x sampler --y steps --out "$CAULDRON_DATA_DIR/../grids"

kill -TERM "$DAEMON"
wait "$DAEMON"
trap - EXIT
echo "== daemon stopped cleanly. Images are under $CAULDRON_DATA_DIR/images =="
echo "(tiny-sd has random weights: the pictures are noise patterns, by design.)"
