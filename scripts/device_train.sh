#!/usr/bin/env bash
# One GPU session trains three detectors side by side, each making its own stego on the GPU
# (stegshield.training.torch_stego): the fast default candidate (stem pooling), the light net at
# full resolution, and the --thorough candidate (width 32, four full-resolution layers).
#
#   bash scripts/device_train.sh COVERS DEST MINUTES [extra train options]
#
# COVERS: a corpus mode folder (manifest.jsonl + train/256 + val/256 tiles); DEST receives
# NAME.safetensors (best validation AUC) and NAME.csv (per-epoch log) for each model, refreshed
# every 15 s so that a run cut off still leaves its best models; run.log holds the output.
# Calibration needs the CPU embedders, so it runs afterwards on the CPU (scripts/train.py).
set -u
COVERS=${1:-.devdata/gray}
DEST=${2:-out/gpu}
MINUTES=${3:-7}
shift $(( $# < 3 ? $# : 3 ))
export PYTHONPATH=src PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
WORK=${WORK:-/tmp/stegshield-gpu}
mkdir -p "$DEST" "$WORK"
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
nproc

train() {
  local name=$1 config=$2
  shift 2
  "$PY" -c 'import sys; from stegshield.training.train_commands import train; train(sys.argv[1:])' \
    --covers "$COVERS" --out "$WORK/$name" --device cuda --arch light --arch-config "$config" \
    --tile 256 --crop 256 --rates 0.4,0.2,0.1 --stage-epochs 1 --early-algorithms lsbm,lsbr \
    --alg-stage-epochs 1 --group-balance 0.5 --epochs 1000 --patience 1000 --epoch-repeats 10 \
    --batch-pairs 32 --max-minutes "$MINUTES" --no-calibrate --no-progress --seed 3 "$@" \
    >"$WORK/$name.log" 2>&1
}

collect() {
  for n in fast full thorough; do
    [ -f "$WORK/$n/best.safetensors" ] && cp "$WORK/$n/best.safetensors" "$DEST/$n.safetensors.tmp" \
      && mv "$DEST/$n.safetensors.tmp" "$DEST/$n.safetensors"
    [ -f "$WORK/$n/log.csv" ] && cp "$WORK/$n/log.csv" "$DEST/$n.csv"
  done
  for n in fast full thorough; do echo "== $n"; tail -n 4 "$WORK/$n.log" 2>/dev/null; done \
    >"$DEST/run.log"
}

train fast '{"stem_pool": true}' "$@" &
train full '{}' "$@" &
train thorough '{"width": 32, "full_res_layers": 4}' "$@" &
while [ -n "$(jobs -rp)" ]; do sleep 15; collect; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null; done
wait
collect
cat "$DEST/run.log"
