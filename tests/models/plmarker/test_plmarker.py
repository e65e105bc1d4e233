"""PL-Marker span NER: markers, positions and masks; packing; text states independent of markers; decoding;
the DyGIE (SciERC) reader; a tiny model that fits and reloads identically; the ONNX export served by ONNX Runtime."""
from __future__ import annotations

import json
import random

import pytest
import torch

from docunet.checkpoint import encoder_config_dict, load_checkpoint, save_checkpoint
from docunet.documents import DataError, Document, Mention
from docunet.inference import predict_documents
from docunet.models import get_family
from docunet.models.plmarker import PLMarkerNERConfig
from docunet.models.plmarker.batching import collate_spans
from docunet.models.plmarker.family import select_spans
from docunet.readers import load_documents
from docunet.training import TrainArgs, train
from tests.conftest import CITIES, NAMES, ORGS, data_path, tiny_transformer

FAMILY = get_family("plmarker-ner")
TYPES = ["PER", "ORG", "LOC"]


def make(tokenizer, seed=0, **overrides):
    transformer = tiny_transformer(tokenizer, seed)
    cfg = PLMarkerNERConfig(entity_types=list(TYPES), encoder_config=encoder_config_dict(transformer),
                            **{"max_seq_length": 32, "max_pair_length": 10, "max_span_width": 3, "prune_ratio": 0.0, **overrides})
    torch.manual_seed(seed)
    return FAMILY.build_model(cfg, transformer).eval(), FAMILY.make_featurizer(tokenizer, cfg)


def ner_doc(rng: random.Random, title: str, n_sents: int = 3) -> Document:
    """Sentences like 'alice works for acme in paris .': every name is a typed mention."""
    sents, ents = [], []
    for s in range(n_sents):
        person, org, city = rng.choice(NAMES), rng.choice(ORGS), rng.choice(CITIES)
        sents.append([person, "works", "for", org, "in", city, "."])
        ents += [[Mention(s, 0, 1, "PER", person)], [Mention(s, 3, 4, "ORG", org)], [Mention(s, 5, 6, "LOC", city)]]
    return Document(title, sents, ents, [], source=f"synthetic:{title}")


def test_markers_positions_and_mask_by_hand(tokenizer):
    _, feat = make(tokenizer, max_span_width=2, max_pair_length=100)
    doc = Document("t", [["alice", "works", "for", "acme"]], [[Mention(0, 0, 1, "PER", "alice")], [Mention(0, 3, 4, "ORG", "acme")]], [])
    (f,) = feat([doc])
    (inst,) = f.instances
    # spans start-major then end: (0,1) (0,2) (1,2) (1,3) (2,3) (2,4) (3,4); text = [CLS] 4 words [SEP]
    assert inst.span_word[:, 1:].tolist() == [[0, 1], [0, 2], [1, 2], [1, 3], [2, 3], [2, 4], [3, 4]]
    assert inst.span_pos.tolist() == [[1, 1], [1, 2], [2, 2], [2, 3], [3, 3], [3, 4], [4, 4]]
    assert inst.labels.tolist() == [1, 0, 0, 0, 0, 0, 2]  # PER = 1, ORG = 2
    b = collate_spans(feat, [f])
    L, K = 6, 7
    assert b.input_ids.shape == (1, L + 2 * K)
    assert b.input_ids[0, L:L + K].eq(feat.start_marker).all() and b.input_ids[0, L + K:].eq(feat.end_marker).all()
    assert b.position_ids[0, L:L + K].tolist() == inst.span_pos[:, 0].tolist()
    assert b.position_ids[0, L + K:].tolist() == inst.span_pos[:, 1].tolist()
    m = b.attention_mask[0]
    assert m[:L, :L].all() and not m[:L, L:].any()  # text sees text, never a marker
    j = 3  # the start marker of span j sees the text, itself and its end marker, nothing else
    row = m[L + j]
    assert row[:L].all() and row[L + j] and row[L + K + j] and int(row.sum()) == L + 2
    assert m[L + K + j, L + j] and int(m[L + K + j].sum()) == L + 2


def test_every_candidate_span_is_in_exactly_one_instance(tokenizer):
    _, feat = make(tokenizer, max_pair_length=4, max_span_width=3)
    doc = ner_doc(random.Random(1), "d", n_sents=2)
    (f,) = feat([doc])
    seen = [tuple(w) for x in f.instances for w in x.span_word.tolist()]
    expected = [(s, i, j) for s, sent in enumerate(doc.sents) for i in range(len(sent)) for j in range(i + 1, min(i + 3, len(sent)) + 1)]
    assert sorted(seen) == sorted(expected) and len(seen) == len(set(seen))
    assert all(len(x.span_pos) <= 4 for x in f.instances) and len(f.instances) > 2 * 4


def test_text_states_do_not_depend_on_markers(tokenizer):
    """Text never attends to markers: the text part of every instance equals the text encoded alone."""
    model, feat = make(tokenizer, max_pair_length=5)
    b = collate_spans(feat, feat([ner_doc(random.Random(2), "d")]))
    with torch.no_grad():
        states = model.encoder(b.input_ids, b.position_ids, b.attention_mask)
        for n in range(b.input_ids.shape[0]):
            L = int((b.attention_mask[n, 0] > 0).sum())
            alone = model.encoder.transformer(input_ids=b.input_ids[n:n + 1, :L].long()).last_hidden_state
            assert torch.allclose(states[n, :L], alone[0], atol=1e-5)


def test_sentences_share_a_window_and_long_documents_get_several(tokenizer):
    """A document that fits the text window is one window holding every sentence's candidates (boundary labels on
    its gold spans' first and last pieces); a longer one gets a window per sentence, centred on it."""
    _, feat = make(tokenizer, max_seq_length=32, max_span_width=2)
    short = ner_doc(random.Random(3), "s", n_sents=2)  # 2 x 7 words + [CLS] [SEP]
    (f,) = feat([short])
    assert len(f.windows) == 1 and f.windows[0].words == 14 and len(f.windows[0].span_pos) == 2 * 13
    w = f.windows[0]
    starts, ends = (w.boundary[:, 0] == 1).nonzero()[0].tolist(), (w.boundary[:, 1] == 1).nonzero()[0].tolist()
    gold = [w.span_pos[i].tolist() for i in (w.labels > 0).nonzero()[0]]
    assert sorted({a for a, _ in gold}) == starts and sorted({b for _, b in gold}) == ends and len(gold) == 6
    assert w.boundary[0].tolist() == [-100, -100] and w.boundary[-1].tolist() == [-100, -100]  # [CLS], [SEP]
    (g,) = feat([ner_doc(random.Random(3), "long", n_sents=8)])  # 56 words: windows differ per sentence
    assert len(g.windows) > 1 and sum(x.words for x in g.windows) == 56
    assert all(len(x.input_ids) <= 32 for x in g.windows)


def test_word_shapes():
    from docunet.models.plmarker.featurize import DIGIT, LOWER, MIXED, OTHER, TITLE, UPPER, word_shape

    assert [word_shape(w) for w in ["paris", "Paris", "NATO", "I", "iPhone", "1990s", "--", "Élodie", "ÉCOLE"]] == [
        LOWER, TITLE, UPPER, TITLE, MIXED, DIGIT, OTHER, TITLE, UPPER]


def test_text_in_one_case_gets_guessed_word_shapes(tokenizer):
    """Lower-case or all-capitals text has lost the capitalisation its word shapes carry: with one_case_shapes
    "guess" (the default) closed-class words read lower and the other words Title, digits and punctuation as they
    are; "literal" and texts in mixed case, or too short to call, keep their shapes as written. Sentence case is
    guessed only with "guess-sentence-case"."""
    from docunet.models.plmarker.featurize import DIGIT, LOWER, OTHER, TITLE, one_case, word_shapes

    lower = [["angela", "merkel", "met", "macron", "in", "berlin", "in", "2019", "."]]
    guessed = [TITLE, TITLE, TITLE, TITLE, LOWER, TITLE, LOWER, DIGIT, OTHER]
    assert one_case(lower) == "lower" and word_shapes(lower, "guess").tolist() == guessed
    upper = [[w.upper() for w in lower[0]]]
    assert one_case(upper) == "upper" and word_shapes(upper, "guess").tolist() == guessed
    assert word_shapes(lower, "literal").tolist() == [LOWER] * 7 + [DIGIT, OTHER]
    written = [["Angela", "Merkel", "met", "Macron", "in", "Berlin", "in", "2019", "."]]
    assert one_case(written) is None and word_shapes(written, "guess").tolist() == word_shapes(written, "literal").tolist()
    assert one_case([["merkel", "met", "macron"]]) is None  # too short to call
    # capitals only where sentences start (and "I"): sentence case, from 20 words on; guessed only when asked
    said = [["Yesterday", "merkel", "met", "macron", "in", "berlin", "."], ["I", "think", "they", "talked", "about", "the", "budget", "."],
            ["It", "was", "the", "first", "meeting", "in", "a", "year", "and", "it", "went", "well", "."]]
    assert one_case(said) == "sentence" and one_case(said[:2]) is None  # 15 words: too short to call
    assert one_case([["Yesterday", "Merkel", *said[0][2:]], *said[1:]]) is None  # a capital inside a sentence: as written
    assert word_shapes(said, "guess").tolist() == word_shapes(said, "literal").tolist()
    assert word_shapes(said, "guess-sentence-case")[1:4].tolist() == [TITLE, TITLE, TITLE]
    assert one_case([["李明", "在", "北京", "工作", "了", "很多", "年"]]) is None  # no cased letters
    # the featurizer reads them: the lower-case document's span shapes are those of its capitalised twin
    doc = Document("d", lower, [], None)
    twin = Document("t", [["Angela", "Merkel", "Met", "Macron", "in", "Berlin", "in", "2019", "."]], [], None)
    _, feat = make(tokenizer)
    _, literal = make(tokenizer, one_case_shapes="literal")
    shapes = lambda f, d: f([d])[0].windows[0].span_shape.tolist()  # noqa: E731
    assert shapes(feat, doc) == shapes(feat, twin) != shapes(literal, doc)
    with pytest.raises(ValueError, match="one_case_shapes must be one of guess, guess-sentence-case, literal, not 'always'"):
        PLMarkerNERConfig(entity_types=["PER"], one_case_shapes="always")


def test_shape_features_reach_the_classifier(tokenizer):
    """The same lower-cased text with different capitalisation: different logits only with shape features."""
    docs = [Document("a", [["alice", "works", "for", "acme"]], [], None), Document("b", [["Alice", "works", "for", "ACME"]], [], None)]
    for shapes in (True, False):
        model, feat = make(tokenizer, shape_features=shapes)
        with torch.no_grad():
            a, b = (FAMILY.run(FAMILY.collate(feat, feat([d])), FAMILY.graphs(model), model.config) for d in docs)
        assert (a - b).abs().max() > 1e-4 if shapes else (a - b).abs().max() < 1e-5


def test_pruning_keeps_the_best_boundary_scores(tokenizer):
    """prune_candidates keeps max(ceil(ratio x words), min_spans) candidates per window, the ones with the best first-piece
    start score plus last-piece end score, in their original order; family.run gives the others "none"."""
    from docunet.models.plmarker.family import PRUNED_NONE_LOGIT, prune_candidates

    model, feat = make(tokenizer, max_span_width=3)
    docs = [ner_doc(random.Random(i), f"d{i}", n_sents=1 + i) for i in range(2)]
    b = FAMILY.collate(feat, feat(docs))
    boundary = torch.randn(*b.input_ids.shape, 2, generator=torch.Generator().manual_seed(0))
    boundary[0, 1, 0] = boundary[0, 2, 1] = 9.0  # window 0: the span of pieces 1..2 is the best
    index, kept = prune_candidates(b, boundary, ratio=2 / 7)  # 7 words -> 2 spans; window 1: 14 words -> 4
    assert kept.sum(1).tolist() == [2, 4]
    lp = torch.nn.functional.logsigmoid(boundary)
    for w, budget in ((0, 2), (1, 4)):
        n = int(b.span_mask[w].sum())
        score = [lp[w, b.span_first[w, i], 0] + lp[w, b.span_last[w, i], 1] for i in range(n)]
        best = sorted(range(n), key=lambda i: -score[i])[:budget]
        assert sorted(index[w][kept[w]].tolist()) == sorted(best)
    assert (1, 2) in [(b.span_first[0, i].item(), b.span_last[0, i].item()) for i in index[0][kept[0]]]
    assert (index[1][kept[1]].diff() > 0).all()  # original (neighbourhood) order
    _, floored = prune_candidates(b, boundary, ratio=2 / 7, min_spans=3)  # a floor for short texts: 3 in window 0
    assert floored.sum(1).tolist() == [3, 4]
    model.config.prune_ratio, model.config.prune_min_spans = 2 / 7, 0
    with torch.no_grad():
        raw = FAMILY.run(b, FAMILY.graphs(model), model.config)
    none = (raw[..., 0] == PRUNED_NONE_LOGIT) & (raw[..., 1:] == 0).all(-1)
    assert (~none & b.span_mask).sum(1).tolist() == [2, 4]
    model.config.prune_ratio = 100.0  # a budget above every window's candidates: the unpruned logits
    with torch.no_grad():
        everything = FAMILY.run(b, FAMILY.graphs(model), model.config)
        model.config.prune_ratio = 0.0
        unpruned = FAMILY.run(b, FAMILY.graphs(model), model.config)
    assert torch.allclose(everything[b.span_mask], unpruned[b.span_mask], atol=1e-6)


def test_prior_correction_moves_the_none_logit_by_its_share_of_log_1_over_r(tokenizer):
    """A model trained on r = 0.2 of the non-entity spans: decoding adds prior_correction x log 5 to "none". Hand-set
    logits: a span whose best type beats "none" by 1.0 is kept with no correction, dropped with the full one
    (log 5 = 1.61), kept at a quarter (0.40)."""
    import dataclasses
    import math

    _, feat = make(tokenizer, max_span_width=1, train_negative_ratio=0.2)
    b = FAMILY.collate(feat, feat([ner_doc(random.Random(0), "d", n_sents=1)]))
    raw = torch.full((*b.span_mask.shape, 1 + len(TYPES)), -5.0)
    raw[..., 0] = 0.0
    raw[0, 0, 1] = 1.0  # the first candidate (word 0): PER by a margin of 1.0 over "none"
    raw[0, 3, 2] = 2.0  # word 3: ORG by 2.0, kept under every correction here
    cfg = feat.config
    found = {}
    for share in (0.0, 0.25, 1.0):
        (spans,) = FAMILY.decode(b, raw, dataclasses.replace(cfg, prior_correction=share))
        found[share] = sorted((s.start, s.type) for s in spans)
    assert found[0.0] == found[0.25] == [(0, "PER"), (3, "ORG")] and found[1.0] == [(3, "ORG")]
    p = 1 / (1 + math.exp(-1.0 + 0.25 * math.log(5)) + 2 * math.exp(-6.0))  # softmax of the PER span, by hand
    (spans,) = FAMILY.decode(b, raw, dataclasses.replace(cfg, prior_correction=0.25))
    assert abs(next(s.score for s in spans if s.start == 0) - p) < 1e-6
    with pytest.raises(ValueError, match="prior_correction must be >= 0"):
        dataclasses.replace(cfg, prior_correction=-1.0)


def test_decoding_flat_and_nested():
    cands = [(0.9, 0, 0, 3, 1), (0.8, 0, 1, 2, 2), (0.7, 0, 2, 4, 1), (0.6, 0, 5, 6, 0), (0.5, 1, 0, 3, 1)]
    flat = select_spans(cands, nested=False)
    assert [c[:4] for c in flat] == [(0.9, 0, 0, 3), (0.6, 0, 5, 6), (0.5, 1, 0, 3)]
    nested = select_spans(cands, nested=True)  # only same-type overlaps are dropped
    assert [c[:4] for c in nested] == [(0.9, 0, 0, 3), (0.8, 0, 1, 2), (0.6, 0, 5, 6), (0.5, 1, 0, 3)]


def test_dygie_reader_and_its_errors(tmp_path):
    good = {"doc_key": "X1", "sentences": [["A", "neural", "parser", "."], ["It", "works", "."]],
            "ner": [[[1, 2, "Method"]], [[4, 4, "Generic"]]], "relations": [[], [[4, 4, 1, 2, "COREF"]]]}
    f = tmp_path / "s.json"
    f.write_text(json.dumps(good) + "\n" + json.dumps({**good, "ner": [[[1, 9, "Method"]], []]}) + "\n")
    with pytest.raises(DataError, match=r"s.json:2: span \[1, 9\] is outside sentence 0 .*\(field ner\[0\]\[0\]; title 'X1'\)"):
        load_documents(f)
    f.write_text(json.dumps(good) + "\n")
    (doc,) = load_documents(f)
    assert [(m.sent_id, m.start, m.end, m.type) for e in doc.entities for m in e] == [(0, 1, 3, "Method"), (1, 0, 1, "Generic")]
    assert [(r.head, r.tail, r.label) for r in doc.relations] == [(1, 0, "COREF")]


def test_real_scierc_reads():
    docs = load_documents(data_path("scierc", "dev.json"))
    assert len(docs) == 50 and all(d.entities for d in docs)


def test_tiny_model_fits_and_reloads_identically(tokenizer, tmp_path):
    model, feat = make(tokenizer, seed=3, max_pair_length=16)
    docs = [ner_doc(random.Random(i), f"d{i}") for i in range(12)]
    args = TrainArgs(epochs=12, batch_size=4, lr_encoder=3e-3, lr_classifier=3e-3, warmup_ratio=0.05, seed=3)
    summary = train(model, feat, docs, docs, args, tmp_path / "ckpt", progress=False)
    assert summary["best_dev_f1"] >= 0.9, summary["epochs"][-1]
    reloaded, rfeat = load_checkpoint(tmp_path / "ckpt")
    assert type(reloaded).__name__ == "PLMarkerNER" and json.loads((tmp_path / "ckpt" / "config.json").read_text())["model_type"] == "plmarker-ner"
    a = predict_documents(reloaded, rfeat, docs[:4])
    b = predict_documents(load_checkpoint(tmp_path / "ckpt")[0], rfeat, docs[:4])
    assert a == b and sum(map(len, a)) >= 10
    assert FAMILY.score(model.config, docs[:4], a).f1 >= 0.9


def test_onnx_export_matches_pytorch_and_serves(tokenizer, tmp_path):
    pytest.importorskip("onnxruntime")
    from docunet.export import ExportOptions, export_checkpoint
    from docunet.runtime import Runtime

    model, feat = make(tokenizer, seed=5, max_pair_length=8)
    ckpt = save_checkpoint(model, tokenizer, tmp_path / "ckpt")
    res = export_checkpoint(ckpt, tmp_path / "export", ExportOptions(threads=1, batch_size=2))
    v = res.manifest["validation"]
    assert v["passed"] and v["samples"]["max_abs_logit_diff"] < 1e-4 and set(res.manifest["graphs"]) == {"text", "spans"}
    assert res.manifest["graphs"]["spans"]["dynamic_axes"]["span_first"] == {"0": "windows", "1": "spans"}
    docs = [ner_doc(random.Random(i), f"d{i}") for i in range(3)]
    ref = predict_documents(model, feat, docs)
    ort = Runtime.load(res.directory, backend="onnxruntime", threads=1)
    got = [p.mentions for p in ort.predict(docs)]
    model.config.prune_ratio = 0.5  # pruning runs between the graphs: every engine serves the same pruned pass
    pruned_ref = predict_documents(model, feat, docs)
    pruned = Runtime.load(res.directory, backend="onnxruntime", threads=1)
    pruned.config.prune_ratio = 0.5
    spans = lambda preds: [[(s.sent_id, s.start, s.end, s.type) for s in p] for p in preds]  # noqa: E731
    assert spans(p.mentions for p in pruned.predict(docs)) == spans(pruned_ref) != spans(ref)
    assert got[0][0].text == " ".join(docs[0].sents[got[0][0].sent_id][got[0][0].start:got[0][0].end])
    assert [[(s.sent_id, s.start, s.end, s.type) for s in p] for p in got] == [[(s.sent_id, s.start, s.end, s.type) for s in p] for p in ref]


def test_onnx_runtime_fusions_cover_the_span_graph_and_keep_its_logits(tokenizer, tmp_path):
    """--ort-fusions (the int8 default): the text graph gets attention fused, the span graph (whose attention is the
    marker pass's own) its bias + GELU and LayerNorms only; both still equal PyTorch within the fp32 tolerance."""
    pytest.importorskip("onnxruntime")
    from docunet.export import ExportOptions, export_checkpoint

    model, feat = make(tokenizer, seed=5, max_pair_length=8)
    ckpt = save_checkpoint(model, tokenizer, tmp_path / "ckpt")
    res = export_checkpoint(ckpt, tmp_path / "export", ExportOptions(threads=1, batch_size=2, ort_fusions=True))
    details, layers = res.manifest["precision_details"], len(model.encoder.transformer.encoder.layer)
    assert details["text_fusion"]["fused"]["MultiHeadAttention"] == layers
    assert details["spans_fusion"]["fused"]["BiasGelu"] == layers and "MultiHeadAttention" not in details["spans_fusion"]["fused"]
    assert "attention as exported" in details["spans_fusion"]["method"]
    v = res.manifest["validation"]
    assert v["passed"] and v["samples"]["max_abs_logit_diff"] < 1e-4



def test_bf16_serving_runs_and_finds_what_fp32_finds(tokenizer, tmp_path):
    """torch's bf16 autocast (what precision "auto" picks on CPUs with AMX): the marker pass runs on bf16 scores and
    fp32 cached states (its padding score fits bf16 and fp16), and a model that fits its data finds the same spans."""
    from docunet.runtime import Runtime

    model, feat = make(tokenizer, seed=3)
    docs = [ner_doc(random.Random(i), f"d{i}") for i in range(4)]
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(60):
        loss, _ = FAMILY.loss(model, FAMILY.collate(feat, feat(docs)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    ckpt = save_checkpoint(model.eval(), tokenizer, tmp_path / "ckpt")
    spans = {}
    for precision in ("fp32", "bf16"):
        preds = list(Runtime.load(ckpt, backend="torch", precision=precision).predict(docs))
        assert all(p.error is None for p in preds), [p.error for p in preds]
        spans[precision] = [sorted((s.sent_id, s.start, s.end, s.type) for s in p.mentions) for p in preds]
    gold = [sorted((m.sent_id, m.start, m.end, m.type) for e in d.entities for m in e) for d in docs]
    assert spans["fp32"] == gold and spans["bf16"] == gold


def test_eval_and_run_commands_read_the_family_from_the_checkpoint(tokenizer, tmp_path):
    """docunet-eval reports typed, untyped and per-type span scores; docunet-run writes mentions; documents
    without entities are fine inputs for an entity model."""
    from click.testing import CliRunner

    from docunet.cli.evaluate import main as eval_main
    from docunet.cli.run import main as run_main
    from tests.conftest import to_docred

    model, _ = make(tokenizer, seed=6)
    ckpt = save_checkpoint(model, tokenizer, tmp_path / "ckpt")
    docs = [ner_doc(random.Random(i), f"d{i}") for i in range(3)]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(to_docred(d)) + "\n" for d in docs) + json.dumps(
        {"title": "no entities", "sents": [["alice", "works", "."]], "vertexSet": []}) + "\n")
    res = CliRunner().invoke(eval_main, ["--model", str(ckpt), "--data", str(data)])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output[res.output.index("{"):])
    assert {"precision", "recall", "f1", "untyped_f1", "by_type"} <= set(report) and report["num_gold"] == 27
    out = tmp_path / "o.jsonl"
    res = CliRunner().invoke(run_main, [str(data), "--model", str(ckpt), "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(recs) == 4 and all("error" not in r for r in recs)
    assert all(set(m) == {"sent", "words", "start", "end", "text", "type", "score"} for r in recs for m in r.get("mentions", []))
    spaced = " ".join(w for s in docs[0].sents for w in s)  # DocRED input: offsets into its words joined by spaces
    assert recs[0]["mentions"] and all(spaced[m["start"]:m["end"]] == m["text"] for m in recs[0]["mentions"])


def test_run_reads_text_and_writes_character_offsets(tokenizer, tmp_path):
    """Entities from text: {"text"} lines, JSON strings, {"sents"} lines and --text files or folders; each mention's
    offsets point into the input text exactly; a bad line is one error line, never a lost one."""
    from click.testing import CliRunner

    from docunet.cli.run import main as run_main

    model, _ = make(tokenizer, seed=6)
    ckpt = save_checkpoint(model, tokenizer, tmp_path / "ckpt")
    texts = ["Alice  works for Acme in\tParis.", "Bob works for Initech in Oslo. Carol works for Globex."]
    lines = [json.dumps({"text": texts[0], "id": 7}), json.dumps(texts[1]), json.dumps({"sents": [["dave", "works", "."]]}),
             json.dumps({"text": 5}), json.dumps({"text": "   "})]
    data = tmp_path / "t.jsonl"
    data.write_text("\n".join(lines) + "\n")
    model.config.prune_ratio = 0.0
    res = CliRunner().invoke(run_main, [str(data), "--model", str(ckpt), "--out", str(tmp_path / "o.jsonl"), "--no-progress"])
    assert res.exit_code == 1, res.output  # two bad lines
    recs = [json.loads(x) for x in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert len(recs) == 5 and recs[0]["title"] == "7"
    assert recs[3]["error"].endswith("t.jsonl:4: expected a string, got a number (field text)")
    assert recs[4]["error"].endswith("t.jsonl:5: has no words (empty or whitespace only) (field text)")
    found = [m for r, t in zip(recs[:2], texts) for m in r["mentions"] if t[m["start"]:m["end"]] == m["text"]]
    assert len(found) == sum(len(r["mentions"]) for r in recs[:2]) > 0
    plain = tmp_path / "plain.txt"
    plain.write_bytes("\n".join(texts).encode() + b"\n\xff\xfe broken\n")
    folder = tmp_path / "docs"
    folder.mkdir()
    for i, t in enumerate(texts):
        (folder / f"doc{i}.txt").write_text(t)
    for src, n in ((plain, 3), (folder, 2)):
        out = tmp_path / f"{src.name}.jsonl"
        res = CliRunner().invoke(run_main, [str(src), "--text", "--model", str(ckpt), "--out", str(out), "--no-progress", "--skip-errors"])
        assert res.exit_code == 0, res.output
        recs = [json.loads(x) for x in out.read_text().splitlines()]
        assert len(recs) == n and all(texts[i][m["start"]:m["end"]] == m["text"] for i in range(2) for m in recs[i]["mentions"])
        if n == 3:
            assert recs[2]["error"].endswith("plain.txt:3: not UTF-8 (invalid start byte at byte 0)")
    res = CliRunner().invoke(run_main, [str(folder), "--model", str(ckpt)])
    assert res.exit_code == 2 and "pass --text" in res.output


def test_text_once_equals_the_dense_packed_pass(tokenizer):
    """Text computed once per window, markers against its cached states: the same logits as the dense packed
    pass (several instances per window, padded text and padded spans), and through family.run in groups of K."""
    model, feat = make(tokenizer, seed=8, max_pair_length=7)
    docs = [ner_doc(random.Random(i), f"d{i}", n_sents=2 + i) for i in range(3)]
    features = feat(docs)
    dense_batch, window_batch = collate_spans(feat, features), FAMILY.collate(feat, features)
    assert dense_batch.input_ids.shape[0] > 3 * window_batch.input_ids.shape[0]
    with torch.no_grad():
        dense, (cached, _) = model.dense(dense_batch), model(window_batch)
        grouped = FAMILY.run(window_batch, FAMILY.graphs(model), model.config)
    assert (dense[dense_batch.span_mask] - cached[window_batch.span_mask]).abs().max() < 1e-4
    assert (grouped[window_batch.span_mask] - cached[window_batch.span_mask]).abs().max() < 1e-5
    model.config.dense_pass = True  # the runtime's dense pass: the packed layout rebuilt from the window batch
    with torch.no_grad():
        served_dense = FAMILY.run(window_batch, FAMILY.graphs(model), model.config)
    assert (served_dense[window_batch.span_mask] - dense[dense_batch.span_mask]).abs().max() < 1e-5


def test_case_warning_for_text_in_one_case():
    """Text whose cased letters are all lower case (or all capitals) gets a warning: the word shapes carry the
    capitalisation that the uncased encoder cannot see. Short texts, uncased scripts and mixed case get none."""
    from docunet.models.plmarker.family import case_warning

    def sents(text):
        return [text.split()]

    assert "no capital letters" in case_warning(sents("angela merkel met emmanuel macron in berlin"))
    assert "all in capitals" in case_warning(sents("ANGELA MERKEL MET EMMANUEL MACRON IN BERLIN"))
    assert case_warning(sents("Angela Merkel met Emmanuel Macron in Berlin")) is None
    assert case_warning(sents("merkel met macron")) is None  # too short to call
    assert case_warning(sents("李明 在 北京 工作 了 很多 年")) is None  # no cased letters
    assert case_warning([["42", "%", "7", "8"], ["9", "10"]]) is None
    said = [f"Yesterday merkel met macron in berlin and they talked about the budget for the next year {k} ." .split() for k in range(2)]
    assert "guess-sentence-case" in case_warning(said) and "was guessed" in case_warning(said, "guess-sentence-case")
    assert "was guessed" in case_warning(sents("angela merkel met emmanuel macron in berlin"))
    assert "one_case_shapes=literal" in case_warning(sents("angela merkel met emmanuel macron in berlin"), "literal")
    cfg = PLMarkerNERConfig(entity_types=["PER"], shape_features=False)
    assert FAMILY.input_warning(cfg, Document("d", sents("angela merkel met emmanuel macron in berlin"), [], [])) is None
