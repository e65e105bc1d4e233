import json

import pytest

from docunet.documents import DataError
from docunet.readers import EMPTY_LINE, DataSpec, count_records, iter_records, load_documents, load_rel2id, read_eog, relation_vocab_for

from tests.conftest import data_path

GOOD = {"title": "T", "sents": [["Alice", "works", "for", "Acme", "."]],
        "vertexSet": [[{"name": "Alice", "sent_id": 0, "pos": [0, 1], "type": "PER"}],
                      [{"name": "Acme", "sent_id": 0, "pos": [3, 4], "type": "ORG"}]],
        "labels": [{"h": 0, "t": 1, "r": "P108", "evidence": [0]}]}


def write_jsonl(path, objs):
    path.write_text("\n".join(json.dumps(o) for o in objs) + "\n")
    return path


def test_json_list_and_jsonl_read_the_same(tmp_path):
    a = tmp_path / "a.json"
    a.write_text(json.dumps([GOOD, GOOD]))
    b = write_jsonl(tmp_path / "b.jsonl", [GOOD, GOOD])
    da, db = load_documents(a), load_documents(b)
    assert len(da) == len(db) == 2
    assert da[0].entities == db[0].entities and da[0].relations == db[0].relations
    assert da[0].entities[1][0].type == "ORG" and da[0].relations[0].label == "P108"
    assert db[1].source.endswith(":2") and da[1].source.endswith("#1")


def test_slice_spec(tmp_path):
    f = write_jsonl(tmp_path / "d.jsonl", [dict(GOOD, title=f"d{i}") for i in range(5)])
    assert [d.title for d in load_documents(f"{f}[1:3]")] == ["d1", "d2"]
    assert [d.title for d in load_documents(f"{f}[3:]")] == ["d3", "d4"]
    assert str(DataSpec.parse(f"{f}[:2]")).endswith("[:2]")


@pytest.mark.parametrize("mutate, problem, field", [
    (lambda d: d.pop("sents"), "required field is missing", "sents"),
    (lambda d: d["vertexSet"][0][0].update(pos=[3, 9]), "span [3, 9] is outside sentence 0", "vertexSet[0][0].pos"),
    (lambda d: d["vertexSet"][0][0].update(sent_id=4), "4 is not a sentence index", "vertexSet[0][0].sent_id"),
    (lambda d: d["vertexSet"].append([]), "entity without mentions", "vertexSet[2]"),
    (lambda d: d["labels"][0].update(r="P999"), "relation 'P999' is not in the relation vocabulary", "labels[0].r"),
    (lambda d: d["labels"][0].update(h=7), "7 is not an entity index", "labels[0].h"),
    (lambda d: d["labels"][0].pop("t"), "required field is missing", "labels[0].t"),
    (lambda d: d.update(sents=[]), "empty document", "sents"),
])
def test_validation_names_file_line_title_and_field(tmp_path, mutate, problem, field):
    """One form everywhere: `file:line: what is wrong (field F; title 'T')`."""
    bad = json.loads(json.dumps(GOOD))
    bad["title"] = "Bad one"
    mutate(bad)
    f = write_jsonl(tmp_path / "x.jsonl", [GOOD, bad])
    with pytest.raises(DataError) as err:
        load_documents(f, relation_vocab=["Na", "P108"])
    msg = str(err.value)
    assert msg.startswith(f"{f}:2: {problem}") and msg.endswith(f"(field {field}; title 'Bad one')"), msg


def test_broken_json_line_is_named(tmp_path):
    f = tmp_path / "x.jsonl"
    f.write_text(json.dumps(GOOD) + "\n{not json\n")
    with pytest.raises(DataError, match=r"x.jsonl:2: not valid JSON"):
        load_documents(f)


EOG_LINE = ("123\tAspirin causes ulcers .|Ulcers hurt .\t"
            "1:CID:2\tL2R\tNON-CROSS\t0-1\t2-3\tD1\tAspirin\tChemical\t0\t1\t0\tD2\tulcers|Ulcers\tDisease\t2:4\t3:5\t0:1\t"
            "not_include\tL2R\tCROSS\t0-1\t5-6\tD1\tAspirin\tChemical\t0\t1\t0\tD3\thurt\tDisease\t5\t6\t1\n")


def test_eog_reader(tmp_path):
    f = tmp_path / "t.data"
    f.write_text(EOG_LINE)
    (doc,) = read_eog(f)
    assert doc.title == "123" and doc.sents[1] == ["Ulcers", "hurt", "."]
    assert len(doc.entities) == 3  # the not_include pair's entity is kept, not dropped
    assert doc.entities[1][1].sent_id == 1 and (doc.entities[1][1].start, doc.entities[1][1].end) == (0, 1)
    assert doc.candidate_pairs == [(0, 1)]
    assert [(r.head, r.tail, r.label) for r in doc.relations] == [(0, 1, "CID")]
    assert relation_vocab_for([doc], f) == ["Na", "CID"]


def test_eog_reader_names_bad_line(tmp_path):
    f = tmp_path / "t.data"
    f.write_text(EOG_LINE + EOG_LINE.replace("\t2:4\t3:5\t0:1", "\t2:4\t3:9\t0:1"))
    with pytest.raises(DataError, match=r"t.data:2: entity D2: mention 1: span 4-9 is outside sentence 1 \(title '123'\)"):
        read_eog(f)


def test_real_cdr_counts():
    docs = read_eog(data_path("cdr", "train_filter.data"))
    assert len(docs) == 500
    assert sum(len(d.relations) for d in docs) == 1038
    assert sum(len(d.candidate_pairs) for d in docs) == 5432 - 192  # not_include pairs are not scored


def test_real_redocred_with_rel2id():
    vocab = load_rel2id(data_path("docred", "rel2id.json"))
    assert vocab[0] == "Na" and len(vocab) == 97
    docs = load_documents(f"{data_path('redocred', 'dev_revised.json')}[0:50]", vocab)
    assert len(docs) == 50 and docs[0].title.startswith("Willi Schneider")


def test_records_report_errors_with_file_line_and_what_is_wrong(tmp_path):
    """The one reader: a truncated line names its own column, a JSON list on a line is not a document,
    blank lines are records (not counted by slices), and every source is file:line."""
    truncated = '{"title": "T", "sents": [["a"]'  # cut off after a value: the error points at its end, not at line 2
    f = tmp_path / "r.jsonl"
    f.write_text(json.dumps(GOOD) + "\n" + truncated + "\n\n" + json.dumps([1, 2]) + "\n" + json.dumps(dict(GOOD, title="last")))
    recs = list(iter_records(f))
    assert [r.source for r in recs] == [f"{f}:{i}" for i in range(1, 6)]
    assert recs[0].error is None and recs[0].value["title"] == "T"
    assert recs[1].error.startswith("not valid JSON (") and f"at column {len(truncated) + 1})" in recs[1].error
    assert recs[2].error == EMPTY_LINE
    assert recs[3].value == [1, 2]
    assert count_records(f) == 5
    assert [r.source for r in iter_records(f"{f}[1:3]")] == [f"{f}:2", f"{f}:3", f"{f}:4"]  # the blank line rides along
    assert [r.value["title"] for r in iter_records(f"{f}[-1:]")] == ["last"]
    assert [r.source for r in iter_records(f"{f}[-2:]")] == [f"{f}:3", f"{f}:4", f"{f}:5"]  # a blank line goes with the next document
    assert count_records(f"{f}[-2:]") == 3


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing.jsonl", "no such file"),
    (lambda p: p, "is a directory, not a file"),
])
def test_unusable_paths_are_named(tmp_path, make, message):
    with pytest.raises(DataError, match=message):
        load_documents(make(tmp_path))


def test_json_list_file_errors_and_slices(tmp_path):
    f = tmp_path / "l.json"
    f.write_text(json.dumps([dict(GOOD, title=f"d{i}") for i in range(4)]))
    assert [d.title for d in load_documents(f"{f}[1:-1]")] == ["d1", "d2"]
    g = tmp_path / "bad.json"
    g.write_text('[{"title": "x",\n "sents": ]')
    with pytest.raises(DataError, match=r"bad.json: not a valid JSON file \(Expecting value at line 2 column 11\)"):
        load_documents(g)
