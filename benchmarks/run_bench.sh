#!/usr/bin/env bash
# Produces the README's performance table: exports a trained checkpoint (fp32 plain and fused for ONNX
# Runtime, int8 encoder, int8 encoder + int8 head) and runs docunet-bench on DocRED test documents, every
# backend side by side: torch-eager (the reference), torch, the ONNX Runtime exports, the fastest exact
# and int8 variants also with grid_fit 14, and with two workers (+w2: two batches at once, one thread each).
# Usage: benchmarks/run_bench.sh CHECKPOINT [OUT]   (default OUT: benchmarks/results/cpu)
# Env: N_DOCS (default 200), BATCH_SIZES (default 1,8,32), THREADS (default 0 = all cores),
#      EXPORTS (where the exports go, default runs/exports), BACKENDS (docunet-bench --backends; an
#      export is made only when a backend uses it), SAMPLE_LIMIT (int8 calibration documents, default 64),
#      SOAK (documents streamed through int8 + grid_fit 14 + 2 workers for the memory soak, default none),
#      EVAL (0: no dev F1, for models with random weights), ROUNDS (round-robin repeats, median reported).
set -euo pipefail
cd "$(dirname "$0")/.."
CKPT=${1:?usage: benchmarks/run_bench.sh CHECKPOINT [OUT]}
OUT=${2:-benchmarks/results/cpu}
DATA=${DATA:-../shared/data}
EXPORTS=${EXPORTS:-runs/exports}
DEV="$DATA/redocred/dev_revised.json[400:500]"
FACTS="$DATA/redocred/dev_revised.json[0:400]"
mkdir -p "$EXPORTS" "$OUT"
ORT=onnxruntime@$EXPORTS
B=${BACKENDS:-torch-eager,torch,$ORT/fp32,$ORT/fp32-fused,$ORT/fp32-fused+w2,$ORT/int8,$ORT/int8-all,$ORT/int8-all+w2,$ORT/fp32-fused+fit14,$ORT/int8-all+fit14,$ORT/int8-all+fit14+w2}
needs() { [[ ",$B," == *"@$EXPORTS/$1,"* || ",$B," == *"@$EXPORTS/$1+"* ]]; }  # export only what is benchmarked
[ -f "$EXPORTS/fp32/manifest.json" ] || docunet-export --checkpoint "$CKPT" --out "$EXPORTS/fp32" --quiet
needs "fp32-fused" && [ ! -f "$EXPORTS/fp32-fused/manifest.json" ] && docunet-export --checkpoint "$CKPT" --out "$EXPORTS/fp32-fused" --ort-fusions --fp32-from "$EXPORTS/fp32" --quiet
needs "int8" && [ ! -f "$EXPORTS/int8/manifest.json" ] && docunet-export --checkpoint "$CKPT" --out "$EXPORTS/int8" --precision int8 --fp32-from "$EXPORTS/fp32" --quiet
needs "int8-all" && [ ! -f "$EXPORTS/int8-all/manifest.json" ] && docunet-export --checkpoint "$CKPT" --out "$EXPORTS/int8-all" --precision int8 --int8-head \
  --fp32-from "$EXPORTS/fp32" --sample-data "$FACTS" --sample-limit "${SAMPLE_LIMIT:-64}" --quiet
EVAL_ARGS=()
[ "${EVAL:-1}" = 0 ] || EVAL_ARGS=(--eval-data "$DEV" --train-facts "$FACTS")
docunet-bench --model "$CKPT" --docs "$DATA/docred/test.json" --n-docs "${N_DOCS:-200}" --batch-sizes "${BATCH_SIZES:-1,8,32}" --rounds "${ROUNDS:-1}" \
  --threads "${THREADS:-0}" \
  --backends "$B" \
  ${EVAL_ARGS[@]+"${EVAL_ARGS[@]}"} \
  ${SOAK:+--soak "$SOAK" --soak-backend "$(python -c "from docunet.bench import Spec; print(Spec.parse('$ORT/int8-all+fit14+w2', '').name)")"} \
  --out "$OUT"
