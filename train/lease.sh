#!/usr/bin/env bash
# The GPU lease runbook (docs/training.md, "A GPU lease step by step").
#
#   here:   train/lease.sh stage [--kodak 3] [--no-vgg]
#   GPU job: bash train/lease.sh device [--plan mse:5.5,gan:2.5] [--init assets/weights/X.pt]
#            bash train/lease.sh device --plan gan:2.5 --work .lease-runs/job2 --init .lease-runs/job1/mse
#                     (a second call while the machine is warm: starts from the first job's run folder)
#            bash train/lease.sh bench [--phase gan] [--batches 16,64] [--compile-modes default]
#            (the job gets a copy of the working tree with the ignored .stage/ sent along, at most
#            64 MiB, and returns at most 8 files of at most 16 MiB from its output folder $OUT)
#   here:   train/lease.sh import DIR [--kodak-limit N]      (DIR: holds the files returned from $OUT)
#           train/lease.sh log DIR                            (adds the lease to docs/training.md)
#           train/lease.sh results [METHODS] [--limit N]       (the test sets, then docs/results.md)
#           train/lease.sh targets [DIR]                      (Kodak24 against the campaign's targets)
#
# PYTHON picks the interpreter (default: python3, the one with torch on the GPU machine).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
verb="${1:-}"
shift || true
case "$verb" in
  stage)
    exec "$PY" -m train.lease stage "$@" ;;
  device)
    export PYTHONUNBUFFERED=1
    "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")'
    exec "$PY" -m train.lease device --out "${OUT:?set OUT to the output folder of the GPU job}" "$@" ;;
  bench)
    # Speed of the gpu preset against naive fp32 eager, on the staged data (docs/training.md).
    export PYTHONUNBUFFERED=1 DENOISERS_DATA_MIRROR="$PWD/.stage/datasets" DENOISERS_WEIGHTS_MIRROR="$PWD/.stage/weights"
    exec "$PY" -m train bench --preset gpu --data .stage/datasets/train/CBSD432 "$@" ;;
  import)
    src="${1:?give the folder holding the files returned from \$OUT}"
    shift
    exec "$PY" -m train.lease import "$src" "$@" ;;
  log)
    src="${1:?give the folder holding the files returned from \$OUT}"
    exec "$PY" -m train.leaselog "$src"/metrics_*.jsonl --write docs/training.md ;;
  results)
    # After an import: METHODS (default idresnet,idgan) on the three test sets at sigma 25/35/50
    # into RESULTS (default docs/results; rows already there are kept), then the results document.
    methods=idresnet,idgan
    if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then methods=$1; shift; fi  # METHODS, unless an option comes first
    root="${RESULTS:-docs/results}"
    for set in kodak24 cbsd68 mcmaster; do
      "$PY" -m denoisers.evaluate --data "$set" --sigma 25 --sigma 35 --sigma 50 --methods "$methods" \
        --out "$root/$set" "$@"
    done
    folders=()
    for set in kodak24 kodak24-crop500 cbsd68 mcmaster; do
      if [ -f "$root/$set/results.csv" ]; then folders+=("$root/$set"); fi
    done
    "$PY" -m denoisers.report "${folders[@]}" --out "$root/../results.md"
    "$PY" -m train.targets "$root/kodak24" || true ;;  # where the campaign stands; not an error
  targets)
    # Kodak24 against the campaign's targets (IDResNet over DnCNN; IDGAN's cost and detail).
    exec "$PY" -m train.targets "${1:-docs/results/kodak24}" ;;
  *)
    sed -n '2,16p' "$0"
    exit 2 ;;
esac
