"""The fp32 checkpoints of a training run as a pipeline bundle, with the coreference rules and entity-model settings
of the int8 bundle they were exported to: the PyTorch reference that an export is compared with.

    python benchmarks/checkpoint_bundle.py RUN_DIR EXPORTED_BUNDLE   # RUN_DIR/{ner,relations} -> RUN_DIR/checkpoint-bundle
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from docunet.pipeline.bundle import read_bundle, write_bundle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("exported", type=Path)
    args = parser.parse_args()
    exported = read_bundle(args.exported)
    out = args.run / "checkpoint-bundle"
    shutil.rmtree(out, ignore_errors=True)
    for part in ("ner", "relations"):
        shutil.copytree(args.run / part, out / part)
    write_bundle(out, coref=exported.coref, ner_settings=exported.ner_settings)
    print(out)


if __name__ == "__main__":
    main()
