#!/usr/bin/env bash
# Measures the shipped default model (docunet/pretrained/redocred-minilm) against the checkpoints it was exported
# from (benchmarks/train_default.sh): its size on disk, what the int8 export (4-bit embedding tables) changes on
# unseen text, and its speed on raw text. Unseen text: DocRED test documents (no labels used) given as text.
# Usage: benchmarks/default_model.sh [RUN_DIR]   (default runs/default; writes benchmarks/results/default-model/)
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:-runs/default}
MODEL=${MODEL:-docunet/pretrained/redocred-minilm}
DATA=${DATA:-../shared/data}
N=${N:-50}
OUT=benchmarks/results/default-model
mkdir -p "$OUT" "$RUN/measure"
{ echo "| file | bytes |"; echo "|---|---|"
  (cd "$MODEL" && find . -type f | sort | while read -r f; do echo "| ${f#./} | $(stat -c %s "$f") |"; done)
  echo "| total | $(du -sb "$MODEL" | cut -f1) (du -sb, directories included) |"; } > "$OUT/size.md"
# the fp32 checkpoints as a pipeline bundle (the shipped coreference rules and entity-model settings), served by PyTorch in fp32
python benchmarks/checkpoint_bundle.py "$RUN" "$MODEL"
python - "$DATA/docred/test.json[0:$N]" "$RUN/measure/texts.jsonl" <<'PY'
import json, sys
from docunet.readers import load_documents
with open(sys.argv[2], "w") as out:
    for d in load_documents(sys.argv[1]):
        out.write(json.dumps({"text": d.surface(), "title": d.title}) + "\n")
PY
docunet-run "$RUN/measure/texts.jsonl" --model "$RUN/checkpoint-bundle" --backend torch --precision fp32 --format docred-docs \
  --out "$RUN/measure/fp32.jsonl" --overwrite --no-progress
# the shipped int8 bundle scored end to end against the fp32 pipeline's own output (agreement, not accuracy)
docunet-eval --model "$MODEL" --data "$RUN/measure/fp32.jsonl" | tee "$OUT/int8-vs-fp32.txt"
python benchmarks/pipeline_speed.py "$MODEL" --docs "$DATA/docred/test.json[0:$N]" --workers 2 --out "$OUT/speed"
