"""docunet-eval: score a model (checkpoint or export) on labelled data, or score a DocRED-format submission file; a
sentence-level relation model (plmarker-re) with the gold entities or those an entity model predicts (--ner)."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ..documents import DataError
from ..inference import DEFAULT_BATCH_SIZE
from ..metrics import score_facts, span_scores_by_type, to_docred_submission, train_facts
from ..readers import load_documents
from ..pipeline.evaluate import evaluate_pipeline
from ..pipeline.sentence_relations import evaluate_sentence_relations
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
@click.option("--ner", "ner_dir", type=ModelDirType(), default=None,
              help="An entity model (plmarker-ner checkpoint or export) for a sentence-level relation model (plmarker-re): "
                   "the entities of --data are predicted by it from the words, then the relations (PL-Marker's "
                   "--use_ner_results); the gold-entity scores are reported beside.")
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
              help="KEY=VALUE, repeatable: a serve-time model setting (e.g. prune_ratio=0.3; for a bundle ner.prune_ratio=0.3, "
                   "or coref.cross_type=none for its coreference rules).")
@clean_errors
def main(model_dir, ner_dir, data_spec, predictions, gold_spec, facts_spec, write_predictions, overwrite, batch_size, threshold,
         top_k, device, settings):
    """Print precision, recall, F1 and Ign F1 as JSON (binary P/R/F1 for CDR/GDA-style data; typed and untyped span
    scores for entity models; Ent, Rel and Rel+ P/R/F1 for sentence-level relation models, with --ner on predicted
    entities; JEREX's end-to-end scores for pipeline bundles)."""
    if predictions is not None:
        if gold_spec is None:
            raise click.UsageError("--predictions needs --gold")
        if model_dir is not None or data_spec is not None:
            raise click.UsageError("give --predictions with --gold, or --model with --data, not both")
    elif model_dir is None or data_spec is None:
        raise click.UsageError("give --model (or --checkpoint) and --data, or --predictions and --gold")
    if ner_dir is not None and predictions is not None:
        raise click.UsageError("--ner goes with --model and --data")
    check_output(write_predictions, overwrite=overwrite, option="--write-predictions")
    facts = train_facts(load_documents(facts_spec)) if facts_spec else None
    if predictions is not None:
        gold = load_documents(gold_spec)
        scores = score_facts(read_submission(Path(predictions)), gold, facts)
    else:
        keywords = runtime_settings(settings)
        ner_settings = keywords.pop("ner_settings", None) if ner_dir is not None else None
        rt = Runtime.load(model_dir, device=str(pick_device(device)), precision="fp32",  # a checkpoint is scored in fp32
                          **keywords)
        if ner_dir is not None or (rt.relations if isinstance(rt, Pipeline) else rt).family.sentence_level:
            if write_predictions:
                raise click.UsageError("--write-predictions writes a DocRED submission of document-level relations; a "
                                       "sentence-level relation model's report has no such file")
            click.echo(json.dumps(_sentence_relations(rt, ner_dir, ner_settings, data_spec, device, batch_size, threshold), indent=2))
            return
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
        scores = rt.family.score(rt.config, gold, rels, facts)
        if rt.family.output == "mentions":  # entity mentions: typed exact spans, untyped, and per type
            report = {**scores.as_dict(), "untyped_f1": scores.ign_f1, "by_type": span_scores_by_type(gold, rels)}
            report.pop("ign_f1")
            click.echo(json.dumps(report, indent=2))
            return
    click.echo(json.dumps(scores.as_dict(), indent=2))


def _sentence_relations(rt, ner_dir, ner_settings, data_spec, device, batch_size: int, threshold: float | None) -> dict:
    """Ent / Rel / Rel+ of a sentence-level relation model: with the gold entities, with --ner's, or with a bundle's
    entity model (given the gold words)."""
    if isinstance(rt, Pipeline):
        if ner_dir is not None:
            raise click.UsageError("--model is a pipeline bundle, which brings its own entity model: drop --ner")
        relations, ner = rt.relations, rt.ner
    else:
        if not rt.family.sentence_level:
            raise click.UsageError(f"--ner applies to sentence-level relation models (plmarker-re); a {rt.family.model_type} model "
                                   "reads entities made by coreference: evaluate a pipeline bundle (docunet-export --ner) instead")
        relations = rt
        ner = None
        if ner_dir is not None:
            ner = Runtime.load(ner_dir, device=str(pick_device(device)), precision="fp32", settings=ner_settings)
            if ner.family.output != "mentions":
                raise click.BadParameter(f"{ner_dir}: is a {ner.family.model_type} model, not an entity model", param_hint="--ner")
    gold = load_documents(data_spec, getattr(relations.config, "relations", None))
    return evaluate_sentence_relations(relations, gold, ner, batch_size, threshold)


if __name__ == "__main__":
    main()
