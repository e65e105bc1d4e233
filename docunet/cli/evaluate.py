"""docunet-eval: score a model (checkpoint or export) on labelled data, or score a DocRED-format submission file."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ..documents import DataError
from ..inference import DEFAULT_BATCH_SIZE
from ..metrics import score_facts, span_scores_by_type, to_docred_submission, train_facts
from ..readers import load_documents
from ..pipeline.evaluate import evaluate_pipeline
from ..runtime import Runtime
from ..runtime.pipeline import Pipeline
from .common import (
    CONTEXT,
    Command,
    DeviceType,
    InputType,
    ModelDirType,
    SettingType,
    check_output,
    clean_errors,
    pick_device,
    runtime_settings,
)


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
        try:
            facts.append((str(x["title"]), int(x["h_idx"]), int(x["t_idx"]), str(x["r"])))
        except (TypeError, ValueError) as exc:
            raise DataError(f"{path}#{i}: h_idx and t_idx must be entity indices ({exc})") from exc
    return facts


@click.command(cls=Command, context_settings=CONTEXT)
@click.option("--model", "--checkpoint", "model_dir", type=ModelDirType(pipeline=True), default=None,
              help="A docunet-train checkpoint or a docunet-export directory to predict with, or a pipeline bundle: then the "
                   "documents of --data are given to it as text (words joined by spaces) and scored end to end.")
@click.option("--data", "data_spec", type=InputType(stdin=False), default=None, help="Labelled data to predict and score (FILE or FILE[start:stop]).")
@click.option("--predictions", type=InputType(stdin=False), default=None, help="A DocRED submission to score instead of a model.")
@click.option("--gold", "gold_spec", type=InputType(stdin=False), default=None, help="Labelled data the --predictions are scored against.")
@click.option("--train-facts", "facts_spec", type=InputType(stdin=False), default=None, help="Training data whose facts Ign F1 ignores (FILE or FILE[start:stop]).")
@click.option("--write-predictions", type=click.Path(path_type=Path), default=None, help="Write the model's predictions as a DocRED submission.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --write-predictions file.")
@click.option("--batch-size", type=click.IntRange(1), default=DEFAULT_BATCH_SIZE)
@click.option("--threshold", type=float, default=None, help="Override the model's decision threshold.")
@click.option("--top-k", type=click.IntRange(0), default=None, help="Override the model's top-k (0: no limit).")
@click.option("--device", type=DeviceType(), default="auto", help="auto, cpu, cuda or cuda:N.")
@click.option("--setting", "settings", type=SettingType(), multiple=True,
              help="KEY=VALUE, repeatable: a serve-time model setting (e.g. prune_ratio=0.3; ner.prune_ratio=0.3 for a bundle).")
@clean_errors
def main(model_dir, data_spec, predictions, gold_spec, facts_spec, write_predictions, overwrite, batch_size, threshold, top_k, device,
         settings):
    """Print precision, recall, F1 and Ign F1 as JSON (binary P/R/F1 for CDR/GDA-style data; typed and untyped span
    scores for entity models; JEREX's end-to-end scores for pipeline bundles)."""
    if predictions is not None:
        if gold_spec is None:
            raise click.UsageError("--predictions needs --gold")
        if model_dir is not None or data_spec is not None:
            raise click.UsageError("give --predictions with --gold, or --model with --data, not both")
    elif model_dir is None or data_spec is None:
        raise click.UsageError("give --model (or --checkpoint) and --data, or --predictions and --gold")
    check_output(write_predictions, overwrite=overwrite, option="--write-predictions")
    facts = train_facts(load_documents(facts_spec)) if facts_spec else None
    if predictions is not None:
        gold = load_documents(gold_spec)
        scores = score_facts(read_submission(Path(predictions)), gold, facts)
    else:
        rt = Runtime.load(model_dir, device=str(pick_device(device)), precision="fp32",  # a checkpoint is scored in fp32
                          **runtime_settings(settings))
        if isinstance(rt, Pipeline):  # end to end: mentions, entities (typed), relations relaxed and strict (JEREX)
            click.echo(json.dumps(evaluate_pipeline(rt, load_documents(data_spec, getattr(rt.config, "relations", None)), batch_size),
                                  indent=2))
            return
        gold = load_documents(data_spec, getattr(rt.config, "relations", None))
        results = list(rt.predict(gold, batch_size=batch_size, threshold=threshold, top_k=top_k))
        failed = [p for p, d in zip(results, gold) if p.error is not None and d.num_entities >= rt.family.min_entities]
        if failed:
            raise DataError(f"{len(failed)} of {len(gold)} documents could not be scored; the first: {failed[0].error}")
        rels = [getattr(p, rt.family.output) for p in results]
        if write_predictions and rt.family.output == "relations":
            Path(write_predictions).write_text(json.dumps(to_docred_submission(gold, rels)) + "\n")
        scores = rt.family.score(gold, rels, facts)
        if rt.family.output == "mentions":  # entity mentions: typed exact spans, untyped, and per type
            report = {**scores.as_dict(), "untyped_f1": scores.ign_f1, "by_type": span_scores_by_type(gold, rels)}
            report.pop("ign_f1")
            click.echo(json.dumps(report, indent=2))
            return
    click.echo(json.dumps(scores.as_dict(), indent=2))


if __name__ == "__main__":
    main()
