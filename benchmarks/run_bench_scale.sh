#!/usr/bin/env bash
# The README's "for scale" table: a BERT-base-sized model (12 layers, hidden 768, random weights:
# speed only, no F1) exported and benchmarked exactly like the trained MiniLM model.
# Usage: benchmarks/run_bench_scale.sh [OUT]   (default OUT: benchmarks/results/cpu-bert-base)
# Env: as benchmarks/run_bench.sh (defaults here: N_DOCS=24, BATCH_SIZES=8, SAMPLE_LIMIT=16 calibration
#      documents, EXPORTS=runs/exports-bert-base, BACKENDS: torch-eager, ONNX Runtime fp32, and int8
#      encoder + head with grid_fit 14).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-runs/bert-base-random}
[ -f "$MODEL/model.safetensors" ] || python benchmarks/random_model.py --out "$MODEL"
E=${EXPORTS:-runs/exports-bert-base}
BACKENDS=${BACKENDS:-torch-eager,onnxruntime@$E/fp32,onnxruntime@$E/int8-all+fit14} \
EXPORTS=$E N_DOCS=${N_DOCS:-24} BATCH_SIZES=${BATCH_SIZES:-8} SAMPLE_LIMIT=${SAMPLE_LIMIT:-16} EVAL=0 \
  benchmarks/run_bench.sh "$MODEL" "${1:-benchmarks/results/cpu-bert-base}"
