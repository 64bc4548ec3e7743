#!/usr/bin/env bash
# Reproduces every shipped moving_shapes reference export from nothing, stage by stage:
#
#   bash tools/train_references.sh [OUT]          # OUT defaults to runs/references
#   bash tools/train_references.sh OUT t2i video   # only these stages (in the order given)
#
# Stages (each trains with the documented config, resumes from its workdir when killed and rerun,
# and exports its EMA parameters; a stage whose export exists is skipped):
#   t2i          configs/moving_shapes.py:t2i twice, the second from the first (a fresh optimiser and
#                cosine schedule; workdirs t2i_1, t2i)               -> OUT/exports/moving_shapes_t2i
#   video        configs/moving_shapes.py:video from the T2I, then :video_high_noise four times,
#                :video_mixture and :video_mixture_settle, each from the last (workdirs video_1..6, video)
#                                                                    -> OUT/exports/moving_shapes_base
#   ssr_image    configs/moving_shapes.py:ssr_image                   -> (workdir only)
#   ssr          configs/moving_shapes.py:ssr from ssr_image          -> OUT/exports/moving_shapes_ssr
#   conditional  configs/moving_shapes.py:conditional from the base   -> OUT/exports/moving_shapes_conditional
#   style        configs/moving_shapes.py:style from the T2I (bf16)   -> OUT/exports/moving_shapes_style_outline
# Wall time of each stage: OUT/times.tsv. Copy OUT/exports/* into assets/ to ship them.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/references}
shift || true
STAGES=("$@")
[ ${#STAGES[@]} -gt 0 ] || STAGES=(t2i video ssr_image ssr conditional style)
PY=${PY:-.venv/bin/python}
export JAX_PLATFORMS=${JAX_PLATFORMS:-cpu} LUMIERE_JAX_CACHE=${LUMIERE_JAX_CACHE:-$PWD/.jax_cache}
mkdir -p "$OUT/exports"
E="$OUT/exports"

stage() {  # name export_name config [extra flags...]
  local name=$1 export=$2 cfg=$3; shift 3
  if [ -n "$export" ] && [ -d "$E/$export" ]; then echo "== $name: $E/$export exists, skipped"; return; fi
  echo "== $name: training in $OUT/$name ($(date -u +%H:%M:%S))"
  local t0=$SECONDS
  "$PY" main.py --config="configs/moving_shapes.py:$cfg" --workdir="$OUT/$name" "$@"
  if [ -n "$export" ]; then
    local dtype=float32
    [ "$name" = style ] && dtype=bfloat16
    "$PY" main.py --config="configs/moving_shapes.py:$cfg" --mode=export --workdir="$OUT/$name" \
        --export_dir="$E/$export" --export_dtype=$dtype
  fi
  printf '%s\t%d\t%s\n' "$name" $((SECONDS - t0)) "$(date -u +%FT%TZ)" >> "$OUT/times.tsv"
}

for s in "${STAGES[@]}"; do
  case $s in
    t2i)         [ -d "$E/moving_shapes_t2i" ] && { echo "== t2i: $E/moving_shapes_t2i exists, skipped"; continue; }
                 stage t2i_1 "" t2i   # 1000 steps left shapes soft: 0.75 read right (docs/reference_model.md)
                 stage t2i moving_shapes_t2i t2i --config.train.init_from="$OUT/t2i_1" ;;
    video)       [ -d "$E/moving_shapes_base" ] && { echo "== video: $E/moving_shapes_base exists, skipped"; continue; }
                 for p in 1 2 3 4 5 6; do   # a phase whose workdir reached its last step resumes as a no-op
                   case $p in 1) c=video; from="$E/moving_shapes_t2i" ;;
                              6) c=video_mixture; from="$OUT/video_5" ;;
                              *) c=video_high_noise; from="$OUT/video_$((p - 1))" ;; esac
                   stage "video_$p" "" $c --config.train.init_from="$from"
                 done
                 stage video moving_shapes_base video_mixture_settle --config.train.init_from="$OUT/video_6" ;;
    ssr_image)   stage ssr_image "" ssr_image ;;
    ssr)         stage ssr moving_shapes_ssr ssr --config.train.init_from="$OUT/ssr_image" ;;
    conditional) stage conditional moving_shapes_conditional conditional \
                   --config.train.init_from="$E/moving_shapes_base" ;;
    style)       stage style moving_shapes_style_outline style --config.train.init_from="$E/moving_shapes_t2i" ;;
    *) echo "unknown stage $s; choose from t2i video ssr_image ssr conditional style" >&2; exit 2 ;;
  esac
done
echo "exports in $E; times in $OUT/times.tsv"
