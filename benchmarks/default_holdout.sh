#!/usr/bin/env bash
# Scores the default recipe on its split: after `SPLIT=holdout benchmarks/train_default.sh` (trained on Re-DocRED
# dev_revised.json [0:400], selected on [400:500]), measures on [400:500] the entity model alone (typed and untyped
# span F1, per type), the relation model with gold entities, and the whole pipeline end to end from text (JEREX's
# mention, entity, entity + type and relation F1), for the fp32 checkpoints (PyTorch) and the int8 bundle.
# With the entity model's decoding settings of the run's bundle (pipeline.json, settings.ner); beside them the sweep
# over prior_correction that chose the shipped value. These are the shipped model's expected-quality numbers (its model card). Writes
# benchmarks/results/default-model/holdout/*.json (or $OUT). Usage: benchmarks/default_holdout.sh [RUN_DIR]   (default runs/default-holdout)
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:-runs/default-holdout}
DATA=${DATA:-../shared/data}
D=$DATA/redocred/dev_revised.json
OUT=${OUT:-benchmarks/results/default-model/holdout}
mkdir -p "$OUT"
# the fp32 checkpoints as a pipeline bundle with the same coreference rules and entity-model settings
python benchmarks/checkpoint_bundle.py "$RUN" "$RUN/bundle"
PC=$(python -c "import sys; from docunet.pipeline.bundle import read_bundle; print(read_bundle(sys.argv[1]).ner_settings.get('prior_correction', 1.0))" "$RUN/bundle")
docunet-eval --model "$RUN/ner" --setting prior_correction="$PC" --data "$D[400:500]" > "$OUT/ner-fp32.json"
docunet-eval --model "$RUN/bundle/ner" --setting prior_correction="$PC" --data "$D[400:500]" > "$OUT/ner-int8.json"
docunet-eval --model "$RUN/relations" --data "$D[400:500]" --train-facts "$D[0:400]" > "$OUT/relations-fp32.json"
docunet-eval --model "$RUN/bundle/relations" --data "$D[400:500]" --train-facts "$D[0:400]" > "$OUT/relations-int8.json"
docunet-eval --model "$RUN/checkpoint-bundle" --data "$D[400:500]" > "$OUT/end-to-end-fp32.json"
docunet-eval --model "$RUN/bundle" --data "$D[400:500]" > "$OUT/end-to-end-int8.json"
for c in 0 0.25 0.5 0.75 1; do  # the selection of prior_correction, on the split
  docunet-eval --model "$RUN/ner" --setting prior_correction=$c --data "$D[400:500]" > "$OUT/sweep-ner-fp32-$c.json"
done
for c in 0 0.25 0.5 1; do
  docunet-eval --model "$RUN/bundle" --setting ner.prior_correction=$c --data "$D[400:500]" > "$OUT/sweep-end-to-end-int8-$c.json"
done
python - "$OUT" "$PC" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
def load(name):
    return json.loads((out / f"{name}.json").read_text())
def pct(x):
    return f"{100 * x:.2f}"
lines = [f"entity model decoding: prior_correction {sys.argv[2]}", "",
         "| measured on [400:500] | fp32 checkpoints (PyTorch) | int8 bundle (ONNX Runtime) |", "|---|---|---|"]
ner = {p: load(f"ner-{p}") for p in ("fp32", "int8")}
rel = {p: load(f"relations-{p}") for p in ("fp32", "int8")}
e2e = {p: load(f"end-to-end-{p}") for p in ("fp32", "int8")}
def row(label, get):
    lines.append(f"| {label} | {get('fp32')} | {get('int8')} |")
row("mentions typed F1 (entity model alone)", lambda p: pct(ner[p]["f1"]))
row("mentions untyped F1 (entity model alone)", lambda p: pct(ner[p]["untyped_f1"]))
row("relations, gold entities: F1 / Ign F1", lambda p: f"{pct(rel[p]['f1'])} / {pct(rel[p]['ign_f1'])}")
for key, label in [("mentions", "end to end: mentions"), ("entities", "end to end: entities"),
                   ("entities_typed", "end to end: entities + type"), ("relations", "end to end: relations relaxed"),
                   ("relations_strict", "end to end: relations strict")]:
    row(f"{label} F1", lambda p, k=key: pct(e2e[p]["end_to_end"][k]["f1"]))
row("strict relations / gold-entity F1 of the same bundle", lambda p: f"{e2e[p]['strict_relation_ratio']:.3f}")
types = sorted(ner["fp32"]["by_type"])
lines.append("")
lines.append("| mention type F1 | " + " | ".join(types) + " |")
lines.append("|---|" + "---|" * len(types))
for p in ("fp32", "int8"):
    lines.append(f"| {p} | " + " | ".join(pct(ner[p]["by_type"][t]["f1"]) for t in types) + " |")
lines += ["", "| prior_correction | mentions typed P / R / F1, fp32 (entity model alone) | untyped F1 | end to end, int8: "
          "mentions / entities / entities + type / relations strict F1 |", "|---|---|---|---|"]
for c in ("0", "0.25", "0.5", "0.75", "1"):
    n = load(f"sweep-ner-fp32-{c}")
    e = json.loads(f.read_text())["end_to_end"] if (f := out / f"sweep-end-to-end-int8-{c}.json").exists() else None
    cells = " / ".join(pct(e[k]["f1"]) for k in ("mentions", "entities", "entities_typed", "relations_strict")) if e else ""
    lines.append(f"| {c} | {pct(n['precision'])} / {pct(n['recall'])} / {pct(n['f1'])} | {pct(n['untyped_f1'])} | {cells} |")
(out / "summary.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PY
