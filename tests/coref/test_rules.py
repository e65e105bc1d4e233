"""Rule coreference: each rule by hand, and the shape of the output."""
import random

from docunet.coref import (
    CorefRules,
    cluster_mentions,
    entities_from_clusters,
    normalise_words,
)
from docunet.documents import Mention, PredictedSpan

NO_RULES = CorefRules(string_match=False, person_names=False, acronyms=False)
TYPED = CorefRules(cross_type="none")  # string matches within a type: each rule's own effect


def mentions(*items):
    """(text, type) pairs, one per sentence, in order."""
    return [Mention(i, 0, len(text.split()), etype, text) for i, (text, etype) in enumerate(items)]


def as_texts(ms, clusters):
    return [[ms[i].name for i in c] for c in clusters]


def test_empty_input():
    assert cluster_mentions([]) == []


def test_normalisation():
    assert normalise_words("The Beatles") == ("beatles",)
    assert normalise_words("Gödel 's") == ("godel",)
    assert normalise_words("People's Party") == normalise_words("People 's Party")
    assert "".join(normalise_words("U.N.")) == "un"
    assert normalise_words("the") == ("the",)  # a lone article stays


def test_every_rule_off_leaves_each_mention_alone():
    ms = mentions(("Paris", "LOC"), ("Paris", "LOC"))
    assert cluster_mentions(ms, NO_RULES) == [[0], [1]]


def test_string_rules_need_the_same_type_without_cross_type():
    ms = mentions(("Paris", "LOC"), ("The Beatles", "ORG"), ("paris", "LOC"), ("Beatles", "ORG"), ("Paris", "PER"))
    assert cluster_mentions(ms, CorefRules(cross_type="none")) == [[0, 2], [1, 3], [4]]
    exact = CorefRules(normalise=False, cross_type="none", person_names=False, acronyms=False)
    assert cluster_mentions(ms, exact) == [[0], [1], [2], [3], [4]]


def test_cross_type():
    ms = mentions(("Paris", "LOC"), ("Paris", "PER"), ("paris", "ORG"))
    assert cluster_mentions(ms, CorefRules(cross_type="exact")) == [[0, 1], [2]]
    assert cluster_mentions(ms, CorefRules(cross_type="normalised")) == [[0, 1, 2]]
    assert cluster_mentions(ms) == [[0, 1, 2]]  # the default: an entity model's types vary for one name


def test_person_first_and_last_names():
    ms = mentions(("John Smith", "PER"), ("Smith", "PER"), ("John", "PER"), ("Smith", "ORG"))
    assert cluster_mentions(ms, TYPED) == [[0, 1, 2], [3]]
    assert cluster_mentions(ms, CorefRules(cross_type="none", person_names=False)) == [[0], [1], [2], [3]]
    assert cluster_mentions(ms) == [[0, 1, 2, 3]]  # across types, "Smith" (ORG) is "Smith" (PER)


def test_person_name_needs_an_earlier_full_name():
    ms = mentions(("Smith", "PER"), ("Jones", "PER"), ("John Smith", "PER"))
    # the lone "Smith" comes first, so it is not linked by the name rule ...
    assert cluster_mentions(ms) == [[0], [1], [2]]
    # ... unless the full name may come later
    assert cluster_mentions(ms, CorefRules(names_any_order=True)) == [[0, 2], [1]]


def test_ambiguous_first_name_stays_alone():
    ms = mentions(("John Smith", "PER"), ("John Brown", "PER"), ("John", "PER"), ("Brown", "PER"))
    assert cluster_mentions(ms) == [[0], [1, 3], [2]]


def test_repeated_full_name_is_not_ambiguous():
    ms = mentions(("John Smith", "PER"), ("john smith", "PER"), ("John", "PER"))
    assert cluster_mentions(ms) == [[0, 1, 2]]


def test_acronyms():
    ms = mentions(("United Nations", "ORG"), ("UN", "ORG"), ("U.N.", "ORG"), ("the University of Oslo", "ORG"),
                  ("UO", "ORG"), ("UN", "LOC"), ("NASA", "ORG"))
    assert as_texts(ms, cluster_mentions(ms, TYPED)) == [
        ["United Nations", "UN", "U.N."], ["the University of Oslo", "UO"], ["UN"], ["NASA"]]
    assert cluster_mentions(ms, CorefRules(cross_type="none", acronyms=False)) == [[0], [1, 2], [3], [4], [5], [6]]


def test_ambiguous_acronym_stays_alone():
    ms = mentions(("European Union", "ORG"), ("Economic Union", "ORG"), ("EU", "ORG"))
    assert cluster_mentions(ms) == [[0], [1], [2]]


def test_acronyms_are_not_for_people():
    ms = mentions(("John Kennedy", "PER"), ("JK", "PER"))
    assert cluster_mentions(ms) == [[0], [1]]


def test_partition_and_order():
    rng = random.Random(0)
    pool = ["John Smith", "Smith", "John", "United Nations", "UN", "Paris", "the Paris", "Jane Smith", "Oslo"]
    items = [Mention(rng.randrange(5), s, s + 2, rng.choice(["PER", "ORG", "LOC"]), rng.choice(pool))
             for s in range(0, 120, 3)]
    rng.shuffle(items)
    clusters = cluster_mentions(items)
    assert sorted(i for c in clusters for i in c) == list(range(len(items)))
    pos = [(m.sent_id, m.start, m.end) for m in items]
    for c in clusters:
        assert [pos[i] for i in c] == sorted(pos[i] for i in c)
    assert [pos[c[0]] for c in clusters] == sorted(pos[c[0]] for c in clusters)


def test_predicted_spans_and_entities():
    sents = [["Ada", "Lovelace", "met", "Babbage", "."], ["Lovelace", "wrote", "notes", "."]]
    spans = [PredictedSpan(1, 0, 1, "PER", 0.9), PredictedSpan(0, 0, 2, "PER", 0.8), PredictedSpan(0, 3, 4, "PER", 0.7)]
    clusters = cluster_mentions(spans, sents=sents)
    assert clusters == [[1, 0], [2]]
    entities = entities_from_clusters(spans, clusters, sents)
    assert entities == [[Mention(0, 0, 2, "PER", "Ada Lovelace"), Mention(1, 0, 1, "PER", "Lovelace")],
                        [Mention(0, 3, 4, "PER", "Babbage")]]


def test_demonyms():
    ms = mentions(("Canada", "LOC"), ("Canadian", "LOC"), ("the United States", "LOC"), ("American", "LOC"),
                  ("Japanese", "LOC"), ("Japan", "LOC"), ("Swedish", "LOC"), ("Sweden", "LOC"), ("Canadian", "MISC"))
    on = CorefRules(demonyms=True, cross_type="none")
    assert as_texts(ms, cluster_mentions(ms, on)) == [
        ["Canada", "Canadian"], ["the United States", "American"], ["Japanese", "Japan"], ["Swedish", "Sweden"], ["Canadian"]]
    assert len(cluster_mentions(ms, TYPED)) == 9  # off by default
    # stems must agree on four letters and the place may lose at most two: "Austrian" is not "Australia"'s
    ms = mentions(("Australia", "LOC"), ("Austrian", "LOC"), ("Paris", "LOC"), ("Parisian", "LOC"))
    assert cluster_mentions(ms, on) == [[0], [1], [2, 3]]
    # two candidate places: the demonym stays alone
    ms = mentions(("Niger", "LOC"), ("Nigeria", "LOC"), ("Nigerian", "LOC"))
    assert cluster_mentions(ms, on) == [[0], [1], [2]]
    # a place is not the demonym of a longer name that starts with it
    ms = mentions(("India", "LOC"), ("Indiana", "LOC"), ("Indian", "LOC"))
    assert cluster_mentions(ms, on) == [[0, 2], [1]]


def test_years():
    ms = mentions(("12 July 1943", "TIME"), ("1943", "TIME"), ("1950", "TIME"), ("May 1950", "TIME"), ("June 1950", "TIME"))
    assert cluster_mentions(ms, CorefRules(years=True)) == [[0, 1], [2], [3], [4]]  # "1950": two dates, left alone
    assert cluster_mentions(ms) == [[0], [1], [2], [3], [4]]


def test_partial_names():
    ms = mentions(("Minnesota Vikings", "ORG"), ("Vikings", "ORG"), ("US Airways Group", "ORG"), ("US Airways", "ORG"),
                  ("the group", "ORG"), ("Vikings", "MISC"))
    on = CorefRules(partial_names=True, cross_type="none")
    assert as_texts(ms, cluster_mentions(ms, on)) == [
        ["Minnesota Vikings", "Vikings"], ["US Airways Group", "US Airways"], ["the group"], ["Vikings"]]
    assert len(cluster_mentions(ms, CorefRules(cross_type="none"))) == 6


def test_rule_settings_are_checked():
    from docunet.coref.rules import with_rule_settings

    rules = with_rule_settings(CorefRules(), {"cross_type": "none", "person_types": ["PER", "MISC"], "years": True})
    assert rules == CorefRules(cross_type="none", person_types=("PER", "MISC"), years=True)
    for bad, message in (({"demonym": True}, "unknown coreference setting 'demonym'"),
                         ({"years": 1}, "years: expected true or false, got 1"),
                         ({"cross_type": "all"}, "cross_type: expected none or exact or normalised"),
                         ({"place_types": "LOC"}, "place_types: expected a list of type names")):
        try:
            with_rule_settings(CorefRules(), bad)
        except ValueError as exc:
            assert message in str(exc)
        else:
            raise AssertionError(f"{bad} was accepted")
