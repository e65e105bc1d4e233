"""docunet-eval: score a checkpoint on labelled data, or score a DocRED-format submission file."""
from __future__ import annotations

import json
from pathlib import Path

import click
import torch

from ..checkpoint import load_checkpoint
from ..documents import DataError
from ..inference import DEFAULT_BATCH_SIZE, predict_documents
from ..metrics import iter_facts, score_facts, to_docred_submission, train_facts
from ..readers import load_documents
from .common import fail_on_data_error, pick_device


def read_submission(path: Path) -> list[tuple[str, int, int, str]]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: cannot read the submission: {exc}") from exc
    if not isinstance(data, list):
        raise DataError(f"{path}: a submission is a JSON list of {{title, h_idx, t_idx, r}}")
    facts = []
    for i, x in enumerate(data):
        if not isinstance(x, dict) or not all(k in x for k in ("title", "h_idx", "t_idx", "r")):
            raise DataError(f"{path}#{i}: expected an object with title, h_idx, t_idx, r")
        facts.append((x["title"], int(x["h_idx"]), int(x["t_idx"]), x["r"]))
    return facts


@click.command(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.option("--checkpoint", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None, help="A docunet-train output directory.")
@click.option("--data", "data_spec", default=None, help="Labelled data to predict and score (FILE or FILE[start:stop]).")
@click.option("--predictions", type=click.Path(exists=True, path_type=Path), default=None, help="A DocRED submission to score instead of a checkpoint.")
@click.option("--gold", "gold_spec", default=None, help="Labelled data the --predictions are scored against.")
@click.option("--train-facts", "facts_spec", default=None, help="Training data whose facts Ign F1 ignores (FILE or FILE[start:stop]).")
@click.option("--write-predictions", type=click.Path(path_type=Path), default=None, help="Write the checkpoint's predictions as a DocRED submission.")
@click.option("--batch-size", default=DEFAULT_BATCH_SIZE)
@click.option("--threshold", type=float, default=None, help="Override the model's decision threshold.")
@click.option("--top-k", type=int, default=None, help="Override the model's top-k.")
@click.option("--device", default="auto")
@fail_on_data_error
def main(checkpoint, data_spec, predictions, gold_spec, facts_spec, write_predictions, batch_size, threshold, top_k, device):
    """Print precision, recall, F1 and Ign F1 as JSON."""
    facts = train_facts(load_documents(facts_spec)) if facts_spec else None
    if predictions is not None:
        if gold_spec is None:
            raise click.UsageError("--predictions needs --gold")
        gold = load_documents(gold_spec)
        preds = read_submission(predictions)
    else:
        if checkpoint is None or data_spec is None:
            raise click.UsageError("give --checkpoint and --data, or --predictions and --gold")
        model, featurizer = load_checkpoint(checkpoint, pick_device(device))
        gold = load_documents(data_spec, model.config.relations)
        with torch.inference_mode():
            rels = predict_documents(model, featurizer, gold, batch_size, threshold, top_k)
        preds = list(iter_facts(gold, rels))
        if write_predictions:
            Path(write_predictions).write_text(json.dumps(to_docred_submission(gold, rels)) + "\n")
    scores = score_facts(preds, gold, facts)
    click.echo(json.dumps(scores.as_dict(), indent=2))


if __name__ == "__main__":
    main()
