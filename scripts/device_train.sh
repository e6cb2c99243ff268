#!/usr/bin/env bash
# One GPU session trains CNN detectors side by side, each making its own stego on the GPU
# (stegshield.training.torch_stego).  Models (MODELS, default all three): fast = the default
# design (stem pooling, shipped as light-gray), full = the light net at full resolution,
# thorough = width 32 with four full-resolution layers (shipped as light-thorough),
# thorough-sca = the same, selection-channel aware (analysis/cnn/sca.py; from light-thorough
# with WARM=1, its SCA parameters starting at zero).
#
#   python scripts/device_data.py            # once: .devdata/gray (train + val 256² tiles)
#   [MODELS="fast thorough"] [BATCH=64] [WARM=1] bash scripts/device_train.sh COVERS DEST MINUTES [train options]
#
# WARM=1 continues from the shipped weights (light-gray, light-thorough) instead of from
# scratch, so that short GPU leases add up.  A warm start skips the curricula and starts at a
# quarter of the learning rate (--stage-epochs 0 --alg-stage-epochs 0 --lr 5e-4; options given
# after MINUTES still win): in the eighth session's lease the curricula's first epoch (LSB only,
# peak rate 2e-3) set the warm models' adaptive validation AUC back to 0.52-0.56, and the
# rest of the 8.2 minutes went into winning it back.  Each model resumes from $WORK/NAME/checkpoint.safetensors
# when it is there: a second call made while the machine is still warm (within its idle
# window, ~30 s) with a larger MINUTES continues the same runs (the fifth session did
# 8.6 then 12.0 minutes, with `--epoch-repeats 40` for BATCH=64).  DEST receives NAME.safetensors (best validation
# AUC) and NAME.csv (per-epoch log) for each model, refreshed every 15 s so that a run cut off
# still leaves its best models; run.log holds the output.  Calibration needs the CPU
# embedders, so it runs afterwards on the CPU (scripts/train.py --skip-train).
set -u
COVERS=${1:-.devdata/gray}
DEST=${2:-out/gpu}
MINUTES=${3:-7}
shift $(( $# < 3 ? $# : 3 ))
MODELS=${MODELS:-fast full thorough}
BATCH=${BATCH:-32}
WARM=${WARM:-0}
export PYTHONPATH=src PYTHONUNBUFFERED=1
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ -x .venv/bin/python ]; then PY=.venv/bin/python  # the project's environment
else PY=python3
fi
WORK=${WORK:-/tmp/stegshield-gpu}
mkdir -p "$DEST" "$WORK"
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
nproc

config_of() {
  case $1 in
    fast) echo '{"stem_pool": true}' ;;
    full) echo '{}' ;;
    thorough) echo '{"width": 32, "full_res_layers": 4}' ;;
    thorough-sca) echo '{"width": 32, "full_res_layers": 4, "sca": true, "sca_rate": 0.4}' ;;
    *) echo "unknown model $1" >&2; exit 2 ;;
  esac
}
init_of() {
  case $WARM:$1 in
    1:fast) echo light-gray ;;
    1:thorough|1:thorough-sca) echo light-thorough ;;
    *) echo random ;;
  esac
}

train() {
  local name=$1
  shift
  local warm_opts=()
  [ "$(init_of "$name")" != random ] && warm_opts=(--stage-epochs 0 --alg-stage-epochs 0 --lr 5e-4)
  "$PY" -c 'import sys; from stegshield.training.train_commands import train; train(sys.argv[1:])' \
    --covers "$COVERS" --out "$WORK/$name" --device cuda --arch light \
    --arch-config "$(config_of "$name")" --init "$(init_of "$name")" \
    --tile 256 --crop 256 --rates 0.4,0.2,0.1 --stage-epochs 1 --early-algorithms lsbm,lsbr \
    --alg-stage-epochs 1 --group-balance 0.5 --epochs 1000 --patience 1000 --epoch-repeats 10 \
    --batch-pairs "$BATCH" --max-minutes "$MINUTES" --no-calibrate --no-progress --seed 3 \
    ${warm_opts[@]+"${warm_opts[@]}"} "$@" \
    >"$WORK/$name.log" 2>&1
}

collect() {
  for n in $MODELS; do
    [ -f "$WORK/$n/best.safetensors" ] && cp "$WORK/$n/best.safetensors" "$DEST/$n.safetensors.tmp" \
      && mv "$DEST/$n.safetensors.tmp" "$DEST/$n.safetensors"
    [ -f "$WORK/$n/log.csv" ] && cp "$WORK/$n/log.csv" "$DEST/$n.csv"
  done
  for n in $MODELS; do echo "== $n"; tail -n 4 "$WORK/$n.log" 2>/dev/null; done >"$DEST/run.log"
}

pids=()
for n in $MODELS; do
  config_of "$n" >/dev/null || exit 2
  train "$n" "$@" &
  pids+=("$!")
done
while [ -n "$(jobs -rp)" ]; do
  sleep 15
  collect
  nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=$((failed + 1)); done
collect
cat "$DEST/run.log"
if [ "$failed" -gt 0 ]; then  # a run that failed must not look like a success
  echo "device_train.sh: $failed of the runs failed (logs in $WORK/*.log)" >&2
  exit 1
fi
