"""Before/after check for refactors that must not change what docunet does.

    python benchmarks/parity_check.py record OUT --checkpoint CKPT [--docs FILE --n-docs 100]
    python benchmarks/parity_check.py check BEFORE AFTER

`record` exports the checkpoint (fp32, validated on the Re-DocRED dev split; then int8 encoder +
int8 head from those graphs), runs `docunet-run` on the first N DocRED test documents with the
checkpoint and with both exports, and keeps the output files and the validation reports (without
their timings and dates). `record --reuse-exports DIR` runs the current code on the exports made
by an earlier `record` (the on-disk format must still load). `check` compares two records: the
output files must be byte-identical and the reports equal; it prints one line per item and exits 1
on any difference. Only the public commands are used, so any version of docunet can record.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DEV = f"{DATA}/redocred/dev_revised.json[400:500]"
TRAIN = f"{DATA}/redocred/dev_revised.json[0:400]"
VOLATILE = {"seconds", "created", "export_seconds", "stage_seconds", "versions", "path"}


SOURCE: Path | None = None  # --source: run the commands from this source tree instead of the installed docunet
_FROM_SOURCE = """import sys
sys.meta_path = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
sys.path.insert(0, sys.argv[1])
import importlib
main = importlib.import_module(sys.argv[2]).main
sys.argv = sys.argv[2:]
main()
"""
_MODULES = {"docunet-export": "docunet.cli.export", "docunet-run": "docunet.cli.run"}


def sh(cmd: list[str]) -> None:
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    if SOURCE is not None:
        cmd = [sys.executable, "-c", _FROM_SOURCE, str(SOURCE), _MODULES[cmd[0]], *cmd[1:]]
    subprocess.run(cmd, check=True)


def stable(obj):
    """The report without timings, dates, paths and library versions."""
    if isinstance(obj, dict):
        return {k: stable(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [stable(v) for v in obj]
    return obj


def record(out: Path, checkpoint: Path, docs: Path, n_docs: int, reuse: Path | None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    data = json.loads(docs.read_text(encoding="utf-8"))
    items = data[:n_docs] if isinstance(data, list) else data
    (out / "input.jsonl").write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in items), encoding="utf-8")
    exports = reuse or out / "exports"
    if reuse is None:
        sh(["docunet-export", "--checkpoint", str(checkpoint), "--out", str(exports / "fp32"), "--eval-data", DEV,
            "--train-facts", TRAIN, "--quiet"])
        sh(["docunet-export", "--checkpoint", str(checkpoint), "--out", str(exports / "int8"), "--precision", "int8",
            "--int8-head", "--fp32-from", str(exports / "fp32"), "--sample-data", TRAIN, "--quiet"])
    reports = {}
    for name in ("fp32", "int8"):
        manifest = json.loads((exports / name / "manifest.json").read_text(encoding="utf-8"))
        reports[name] = stable(manifest["validation"])
    (out / "validation_reports.json").write_text(json.dumps(reports, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    for name, model in (("checkpoint", checkpoint), ("fp32", exports / "fp32"), ("int8", exports / "int8")):
        sh(["docunet-run", str(out / "input.jsonl"), "--model", str(model), "--out", str(out / f"run_{name}.jsonl"),
            "--no-progress", "--threads", "2"])
    sh(["docunet-run", str(out / "input.jsonl"), "--model", str(checkpoint), "--format", "docred",
        "--out", str(out / "run_checkpoint_docred.json"), "--no-progress", "--threads", "2"])


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check(before: Path, after: Path) -> int:
    bad = 0
    for name in ("run_checkpoint.jsonl", "run_fp32.jsonl", "run_int8.jsonl", "run_checkpoint_docred.json", "validation_reports.json"):
        a, b = before / name, after / name
        if not a.exists() or not b.exists():
            print(f"MISSING  {name}")
            bad += 1
            continue
        same = a.read_bytes() == b.read_bytes()
        lines = a.read_text(encoding="utf-8").count("\n")
        print(f"{'same   ' if same else 'DIFFERS'}  {name}  ({lines} lines, sha256 {digest(a)[:16]} / {digest(b)[:16]})")
        bad += not same
    return 1 if bad else 0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    r.add_argument("out", type=Path)
    r.add_argument("--checkpoint", type=Path, required=True)
    r.add_argument("--docs", type=Path, default=DATA / "docred" / "test.json")
    r.add_argument("--n-docs", type=int, default=100)
    r.add_argument("--reuse-exports", type=Path, default=None)
    r.add_argument("--source", type=Path, default=None, help="Run the docunet of this source tree (e.g. a git worktree "
                   "of the commit before a change) instead of the installed one.")
    c = sub.add_parser("check")
    c.add_argument("before", type=Path)
    c.add_argument("after", type=Path)
    a = p.parse_args()
    if a.cmd == "record":
        global SOURCE
        SOURCE = a.source.resolve() if a.source else None
        record(a.out, a.checkpoint, a.docs, a.n_docs, a.reuse_exports)
    else:
        sys.exit(check(a.before, a.after))


if __name__ == "__main__":
    main()
