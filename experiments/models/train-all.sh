#!/usr/bin/env bash
# Train (or resume) the three bundled models one after another on the cpu backend, then copy each finished run's
# model.safetensors and record.json from experiments/models/<name>/train/ to experiments/models/<name>/.
# Safe to kill at any time and to rerun: every run resumes from its last checkpoint (every 20 iterations and every
# epoch end); a model whose model.safetensors is already bundled is skipped. Log: experiments/models/<name>/train/train.log.
#   nohup bash experiments/models/train-all.sh > /dev/null 2>&1 &
# With names as arguments (e.g. `train-all.sh mnist-resnet20`), only those models are trained, in the order given.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PTSLAB_BACKEND="${PTSLAB_BACKEND:-cpu}"

run() {
  local name="$1"; shift
  local dir="experiments/models/$name"
  if [[ -f "$dir/model.safetensors" ]]; then echo "$name: already bundled"; return; fi
  mkdir -p "$dir/train"
  node dist/scripts/cli.js train "$@" --checkpoint-every 20 --out "$dir/train" --resume >> "$dir/train/train.log" 2>&1
  if [[ -f "$dir/train/model.safetensors" ]]; then
    cp "$dir/train/model.safetensors" "$dir/model.safetensors.tmp" && mv "$dir/model.safetensors.tmp" "$dir/model.safetensors"
    cp "$dir/train/record.json" "$dir/record.json"
    echo "$name: bundled"
  fi
}

declare -A RECIPE=(
  [fmnist-resnet20]="--arch resnet20 --dataset fashion-mnist --epochs 10 --batch 128 --lr 0.1 --wd 5e-4 --seed 0"
  [mnist-resnet20]="--arch resnet20 --dataset mnist --epochs 3 --batch 128 --lr 0.1 --wd 5e-4 --seed 0"
  [fmnist-mobilenetv2]="--arch mobilenetv2 --dataset fashion-mnist --epochs 10 --batch 128 --lr 0.1 --wd 5e-4 --seed 0 --width-mult 0.5"
)
names=("$@")
[[ ${#names[@]} -gt 0 ]] || names=(fmnist-resnet20 mnist-resnet20 fmnist-mobilenetv2)
for name in "${names[@]}"; do
  [[ -n "${RECIPE[$name]:-}" ]] || { echo "train-all.sh: unknown model '$name' (known: ${!RECIPE[*]})" >&2; exit 2; }
  # shellcheck disable=SC2086
  run "$name" ${RECIPE[$name]}
done
