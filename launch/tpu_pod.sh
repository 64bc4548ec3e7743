#!/usr/bin/env bash
# Run main.py on every worker of a Cloud TPU pod slice (one process per worker/host).
#
#   launch/tpu_pod.sh TPU_NAME ZONE [--setup] -- --config=configs/base.py --workdir=gs://BUCKET/base ...
#
# --setup first copies this repository to every worker (REPO_DIR) and installs the pinned
# requirements plus jax[tpu] into REPO_DIR/.venv. Every worker then starts the same command;
# main.py detects the TPU pod and calls jax.distributed.initialize() (no flags needed), the mesh
# comes from config.mesh (e.g. --config.mesh.ici_fsdp=-1 --config.mesh.ici_data=1 for FSDP within
# a slice; several slices: --config.mesh.dcn_data=-1), and each worker loads its slice of the
# global batch. The workdir must be shared by all workers (a gs:// bucket): orbax checkpoints are
# written and read by all processes. Environment: PROJECT (gcloud project, optional),
# REPO_DIR (default: lumiere_jax in the workers' home), JAX_VERSION (default: the pinned one).
set -euo pipefail
if [[ $# -lt 3 ]]; then
  echo "usage: $0 TPU_NAME ZONE [--setup] -- MAIN_PY_FLAGS..." >&2; exit 2
fi
NAME=$1; ZONE=$2; shift 2
SETUP=0
if [[ ${1:-} == --setup ]]; then SETUP=1; shift; fi
if [[ ${1:-} != -- ]]; then echo "$0: expected -- before the main.py flags" >&2; exit 2; fi
shift
REPO_DIR=${REPO_DIR:-lumiere_jax}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
JAX_VERSION=${JAX_VERSION:-$(sed -n 's/^jax==\([0-9.]*\).*/\1/p' "$ROOT/requirements.txt")}
GCLOUD=(gcloud compute tpus tpu-vm)
OPTS=(--zone="$ZONE" ${PROJECT:+--project="$PROJECT"})

if [[ $SETUP == 1 ]]; then
  tar -C "$ROOT" --exclude=.venv --exclude=.jax_cache --exclude=runs --exclude=.git -czf /tmp/lumiere_jax.tgz .
  "${GCLOUD[@]}" scp /tmp/lumiere_jax.tgz "$NAME":/tmp/lumiere_jax.tgz --worker=all "${OPTS[@]}"
  "${GCLOUD[@]}" ssh "$NAME" --worker=all "${OPTS[@]}" --command="set -e; mkdir -p $REPO_DIR; \
    tar -C $REPO_DIR -xzf /tmp/lumiere_jax.tgz; cd $REPO_DIR; python3 -m venv .venv; \
    .venv/bin/pip install -q -r requirements.txt -c constraints.txt; \
    .venv/bin/pip install -q 'jax[tpu]==$JAX_VERSION'; .venv/bin/pip install -q --no-deps -e ."
fi

ARGS=$(printf '%q ' "$@")
"${GCLOUD[@]}" ssh "$NAME" --worker=all "${OPTS[@]}" \
  --command="cd $REPO_DIR && JAX_PLATFORMS=tpu .venv/bin/python main.py $ARGS"
