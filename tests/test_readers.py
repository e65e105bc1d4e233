import json

import pytest

from docunet.documents import DataError
from docunet.readers import DataSpec, load_documents, load_rel2id, read_eog, relation_vocab_for

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


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d.pop("sents"), "'sents': missing"),
    (lambda d: d["vertexSet"][0][0].update(pos=[3, 9]), "vertexSet[0][0].pos"),
    (lambda d: d["vertexSet"][0][0].update(sent_id=4), "vertexSet[0][0].sent_id"),
    (lambda d: d["vertexSet"].append([]), "vertexSet[2]': entity without mentions"),
    (lambda d: d["labels"][0].update(r="P999"), "labels[0].r"),
    (lambda d: d["labels"][0].update(h=7), "labels[0].h"),
    (lambda d: d["labels"][0].pop("t"), "labels[0].t"),
    (lambda d: d.update(sents=[]), "empty document"),
])
def test_validation_names_file_line_title_and_field(tmp_path, mutate, field):
    bad = json.loads(json.dumps(GOOD))
    bad["title"] = "Bad one"
    mutate(bad)
    f = write_jsonl(tmp_path / "x.jsonl", [GOOD, bad])
    with pytest.raises(DataError) as err:
        load_documents(f, relation_vocab=["Na", "P108"])
    msg = str(err.value)
    assert f"{f}:2" in msg and "'Bad one'" in msg and field in msg


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
    with pytest.raises(DataError, match=r"t.data:2 .*span"):
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
