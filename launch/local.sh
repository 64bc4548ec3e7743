#!/usr/bin/env bash
# Several processes on one machine, coordinated over localhost (testing multi-host code paths, or
# one process per GPU without a cluster manager).
#
#   launch/local.sh N -- --config=configs/tiny.py:t2i --workdir=/tmp/mp ...
#
# Process i runs main.py --coordinator_address=localhost:PORT --num_processes=N --process_id=i.
# Devices per process: on CPU, DEVICES_PER_PROCESS (default 1) host devices each
# (XLA_FLAGS=--xla_force_host_platform_device_count); on GPU (JAX_PLATFORMS=cuda), set
# GPUS_PER_PROCESS=k so that process i sees GPUs i*k .. i*k+k-1. Output of process i goes to
# LOG_DIR/process_i.log (default /tmp/lumiere_jax_local); Ctrl-C kills all of them (SIGKILL: JAX
# catches SIGTERM). Exit status: the first failing process's.
set -euo pipefail
if [[ $# -lt 2 || $2 != -- ]]; then echo "usage: $0 NUM_PROCESSES -- MAIN_PY_FLAGS..." >&2; exit 2; fi
N=$1; shift 2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
LOG_DIR=${LOG_DIR:-/tmp/lumiere_jax_local}
PORT=${PORT:-$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("localhost", 0)); print(s.getsockname()[1])')}
export JAX_PLATFORMS=${JAX_PLATFORMS:-cpu}
mkdir -p "$LOG_DIR"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done; }
trap cleanup INT TERM EXIT
for ((i = 0; i < N; i++)); do
  ENV=()
  if [[ $JAX_PLATFORMS == cpu ]]; then
    ENV+=(XLA_FLAGS="${XLA_FLAGS:-} --xla_force_host_platform_device_count=${DEVICES_PER_PROCESS:-1}")
  elif [[ -n ${GPUS_PER_PROCESS:-} ]]; then
    ENV+=(CUDA_VISIBLE_DEVICES=$(seq -s, $((i * GPUS_PER_PROCESS)) $((i * GPUS_PER_PROCESS + GPUS_PER_PROCESS - 1))))
  fi
  env "${ENV[@]}" "$PYTHON" "$ROOT/main.py" --coordinator_address="localhost:$PORT" --num_processes="$N" \
    --process_id="$i" "$@" > "$LOG_DIR/process_$i.log" 2>&1 &
  PIDS+=($!)
done
echo "started $N processes (coordinator localhost:$PORT); logs in $LOG_DIR/process_*.log"
STATUS=0
for p in "${PIDS[@]}"; do
  wait "$p" || { STATUS=$?; echo "a process exited with $STATUS; killing the others" >&2; break; }
done
exit $STATUS
