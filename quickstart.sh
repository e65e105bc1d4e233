#!/usr/bin/env bash
# Set up docunet on a fresh machine and run the shipped pipeline on three example texts: sentences, entity
# mentions (PL-Marker), coreference and document-level relations (DocuNet), printed for people.
# No training and no download beyond the pip install; about a minute on 2 CPU cores after the install.
set -euo pipefail
cd "$(dirname "$0")"
python3 -m pip install --quiet --disable-pip-version-check torch==2.13.0   # the CPU build (on GPU machines install the CUDA build instead)
python3 -m pip install --quiet --disable-pip-version-check -e .
docunet-run --text examples/texts --format text --no-progress
