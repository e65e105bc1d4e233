#!/usr/bin/env bash
# int8 weights that fit the serving CPU (issue 18), side by side in one docunet-bench run on this machine:
#   torch-eager (the reference) and torch-auto (bf16 with AMX, fp32 elsewhere);
#   the fused fp32 export, grid_fit 14, two workers (the exact ONNX Runtime path);
#   one 8-bit int8 export (encoder only, and encoder + head) served as exported (-w8) and requantized to
#   7 bits at load (-w7from8: what the runtime serves by default on CPUs without VNNI), beside a 7-bit
#   export (-w7), plain and with grid_fit 14 + two workers (the fastest path);
# every row with dev F1. The table names the CPU (its kind decides: AVX2 -> -w7from8, VNNI/AMX -> -w8).
# Run it on both kinds of CPU; the two tables answer: does -w7from8 keep AVX2 within 0.1 F1 of the
# reference like -w7, and is -w8 within 0.1 on AMX (and -w7 / -w7from8 0.6 below)?
# Usage: benchmarks/int8_fit.sh CHECKPOINT [OUT]   (default OUT: benchmarks/results/int8-fit-<cpu kind>)
# Env: N_DOCS (default 200), BATCH_SIZES (default 1,8), THREADS (0 = all cores), ROUNDS (default 1),
#      EXPORTS (default runs/exports-int8-fit), SAMPLE_LIMIT (head calibration documents, default 64),
#      EVAL (0: no dev F1, for random weights), DATA (default ../shared/data), BACKENDS (override the list).
set -euo pipefail
cd "$(dirname "$0")/.."
CKPT=${1:?usage: benchmarks/int8_fit.sh CHECKPOINT [OUT]}
KIND=$(python -c "from docunet.engines.cpu import cpu_info; print(cpu_info().kind.lower().replace(' ', '-'))")
OUT=${2:-benchmarks/results/int8-fit-$KIND}
DATA=${DATA:-../shared/data}
E=${EXPORTS:-runs/exports-int8-fit}
DEV="$DATA/redocred/dev_revised.json[400:500]"
FACTS="$DATA/redocred/dev_revised.json[0:400]"
mkdir -p "$E" "$OUT"
export_once() {  # DIR ARGS...: export unless DIR already holds a finished export
  local dir=$1; shift
  [ -f "$E/$dir/manifest.json" ] || docunet-export --checkpoint "$CKPT" --out "$E/$dir" --quiet "$@"
}
export_once fp32
export_once fp32-fused --ort-fusions --fp32-from "$E/fp32"
export_once int8-w8 --precision int8 --int8-weight-bits 8 --fp32-from "$E/fp32"
HEAD=(--precision int8 --int8-head --fp32-from "$E/fp32" --sample-data "$FACTS" --sample-limit "${SAMPLE_LIMIT:-64}")
export_once int8-all-w8 "${HEAD[@]}" --int8-weight-bits 8
export_once int8-all-w7 "${HEAD[@]}" --int8-weight-bits 7
O=onnxruntime@$E
# +weights= names the weights explicitly, so the list means the same rows on every CPU
B=${BACKENDS:-torch-eager,torch-auto,$O/fp32-fused+fit14+w2,\
$O/int8-w8+weights=as-exported,$O/int8-w8+weights=w7,\
$O/int8-all-w8+weights=as-exported,$O/int8-all-w8+weights=w7,$O/int8-all-w7,\
$O/int8-all-w8+weights=as-exported+fit14+w2,$O/int8-all-w8+weights=w7+fit14+w2,$O/int8-all-w7+fit14+w2}
EVAL_ARGS=()
[ "${EVAL:-1}" = 0 ] || EVAL_ARGS=(--eval-data "$DEV" --train-facts "$FACTS")
docunet-bench --model "$CKPT" --docs "$DATA/docred/test.json" --n-docs "${N_DOCS:-200}" --batch-sizes "${BATCH_SIZES:-1,8}" \
  --rounds "${ROUNDS:-1}" --threads "${THREADS:-0}" --backends "$B" ${EVAL_ARGS[@]+"${EVAL_ARGS[@]}"} --out "$OUT"
