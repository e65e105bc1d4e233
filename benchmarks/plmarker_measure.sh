#!/usr/bin/env bash
# Measures a trained PL-Marker NER checkpoint (issue 12): mention F1 on Re-DocRED [400:500] without pruning and
# at several prune ratios (docunet-eval --setting prune_ratio=R), its ONNX exports (fp32, int8), and one
# docunet-bench run on DocRED test documents, batch 8: the dense packed pass, the text-once pass, pruned,
# and the ONNX Runtime exports pruned; then the DocuNet gold-entity path on the same documents and machine.
# Usage: benchmarks/plmarker_measure.sh NER_CHECKPOINT DOCUNET_CHECKPOINT_OR_EXPORT [OUT]
# Env: RATIOS (default "0 0.2 0.3 0.4 0.6"), PRUNE (the ratio benched, default 0.4), N_DOCS (default 50),
#      DATA (default ../shared/data), EXPORTS (default runs/plmarker-exports).
set -euo pipefail
cd "$(dirname "$0")/.."
NER=${1:?usage: benchmarks/plmarker_measure.sh NER_CHECKPOINT DOCUNET_MODEL [OUT]}
REL=${2:?usage: benchmarks/plmarker_measure.sh NER_CHECKPOINT DOCUNET_MODEL [OUT]}
OUT=${3:-benchmarks/results/plmarker}
DATA=${DATA:-../shared/data}
E=${EXPORTS:-runs/plmarker-exports}
DEV="$DATA/redocred/dev_revised.json[400:500]"
R=${PRUNE:-0.4}
mkdir -p "$OUT" "$E"
for r in ${RATIOS-0 0.2 0.3 0.4 0.6}; do
  docunet-eval --model "$NER" --data "$DEV" --setting prune_ratio=$r > "$OUT/eval-prune-$r.json"
  python -c "import json,sys; d=json.load(open('$OUT/eval-prune-$r.json')); print(f'prune {sys.argv[1]}: typed {100*d[\"f1\"]:.2f} untyped {100*d[\"untyped_f1\"]:.2f}')" "$r"
done
[ -f "$E/fp32/manifest.json" ] || docunet-export --checkpoint "$NER" --out "$E/fp32" --quiet
[ -f "$E/int8/manifest.json" ] || docunet-export --checkpoint "$NER" --out "$E/int8" --precision int8 --fp32-from "$E/fp32" --quiet
docunet-bench --model "$NER" --docs "$DATA/docred/test.json" --n-docs "${N_DOCS:-50}" --batch-sizes 8 \
  --backends "torch+dense,torch+prune0,torch+prune$R,onnxruntime@$E/fp32+prune$R,onnxruntime@$E/int8+prune$R,onnxruntime@$E/int8+prune$R+w2" \
  --out "$OUT/bench-ner"
docunet-bench --model "$REL" --docs "$DATA/docred/test.json" --n-docs "${N_DOCS:-50}" --batch-sizes 8 \
  --backends "${REL_BACKENDS:-torch-eager}" --out "$OUT/bench-docunet-gold"
