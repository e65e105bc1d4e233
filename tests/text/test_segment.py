"""docunet.text.split_text: exact offsets, no lost characters, sentence rules, bounded sentences."""
from __future__ import annotations

import random

import pytest

from docunet.text import MAX_SENT_WORDS, SplitText, document_from_text, split_text

UNICODE_TEXTS = [
    "Café déjà vu: Zoë Saldaña met François in Besançon.",
    "東京は日本の首都です。次の文はここ。Tokyo is big.",
    "مرحبا بالعالم. هذه جملة ثانية.",
    "שלום עולם. זה משפט שני.",
    "Thumbs 👍🏽 and 👋🏿! Family 👩\u200d👩\u200d👧 here. Flags 🇫🇷🇩🇪 too.",
    "Combining: e\u0301te\u0301, x\u0301\u0302y, a\u20dd and Z\u0335\u0321a\u0336lgo.",
    "Mixed عربي and English (with עברית) 中文 text. Next one!",
    "NUL\x00inside and\x00 alone \x00 \x01\x02\x7f controls\x1b[0m. End.",
    "Windows\r\nlines\r\n\r\nnew paragraph. Line\u2028separator and\u2029paragraph separator.",
    "Tabs\tand\u00a0no-break\u3000ideographic space, zero\u200bwidth and \ufeffBOM.",
    "Surrogate-free astral 𝕏 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 and Hangul 한국어 문장.",
]


def check(text: str, split: SplitText) -> None:
    """Offsets exact and ordered; each non-whitespace char in exactly one word, no whitespace in any."""
    assert len(split.sents) == len(split.offsets)
    owner = [0] * len(text)
    prev_end = 0
    for words, offsets in zip(split.sents, split.offsets):
        assert 0 < len(words) == len(offsets) <= MAX_SENT_WORDS
        for word, (start, end) in zip(words, offsets):
            assert prev_end <= start < end <= len(text)
            assert text[start:end] == word
            assert not any(c.isspace() for c in word)
            for i in range(start, end):
                owner[i] += 1
            prev_end = end
    assert [owner[i] for i, c in enumerate(text) if not c.isspace()] == [1] * sum(not c.isspace() for c in text)
    rebuilt = "".join(w for s in split.sents for w in s)
    assert rebuilt == "".join(c for c in text if not c.isspace())


@pytest.mark.parametrize("text", UNICODE_TEXTS)
def test_offsets_round_trip_and_no_character_lost(text):
    check(text, split_text(text))


@pytest.mark.parametrize("text", ["", " ", "\n\n\t ", "\u2028\u2029\r\n\x1c\u3000\u00a0"])
def test_empty_and_whitespace_text_has_no_sentences(text):
    assert split_text(text) == SplitText([], [])
    doc = document_from_text(text)
    assert doc.sents == [] and doc.word_offsets == []


def words(text: str) -> list[str]:
    return [w for s in split_text(text).sents for w in s]


def test_user_perceived_characters_stay_whole():
    assert words("Yes 👍🏽!") == ["Yes", "👍🏽", "!"]
    assert words("A 👩\u200d👩\u200d👧 family") == ["A", "👩\u200d👩\u200d👧", "family"]
    assert words("🇫🇷🇩🇪🇮") == ["🇫🇷", "🇩🇪", "🇮"]
    assert words("cafe\u0301 x\u0301y") == ["cafe\u0301", "x\u0301y"]
    assert words("❤\ufe0f ok") == ["❤\ufe0f", "ok"]


def test_control_characters_attach_or_stand_alone():
    assert words("a\x00b \x00 c\x01") == ["a\x00b", "\x00", "c\x01"]
    text = "\x00" * 1000
    assert split_text(text).offsets == [[(0, 1000)]]


def test_rtl_and_cjk_offsets():
    split = split_text("مرحبا بالعالم. שלום עולם.")
    assert split.sents == [["مرحبا", "بالعالم", "."], ["שלום", "עולם", "."]]
    split = split_text("東京は日本の首都です。次の文。")
    assert split.sents == [["東京は日本の首都です", "。"], ["次の文", "。"]]
    assert split.offsets == [[(0, 10), (10, 11)], [(11, 14), (14, 15)]]


def test_sentences_and_line_breaks():
    assert split_text("Mr. Smith went to Washington. He left!").sents == [
        ["Mr.", "Smith", "went", "to", "Washington", "."], ["He", "left", "!"]]
    assert len(split_text("a hard\nwrapped line\r\nand another").sents) == 1
    assert len(split_text("one line\u2028two").sents) == 1
    for sep in ("\n\n", "\r\n\r\n", "\n \t\n", "\u2029", "\u2028\u2028"):
        assert split_text(f"first part{sep}second part").sents == [["first", "part"], ["second", "part"]], sep


def test_openers_start_the_next_sentence():
    split = split_text('It is rock. "Surreal" is a song. (It sold well.) End.')
    assert [s[0] for s in split.sents] == ["It", '"', "(", "End"]
    spaced = split_text('It is rock . " Surreal " is a song . " Next " one .')
    assert [s[0] for s in spaced.sents] == ["It", '"', '"']
    assert split_text('He said "hi." She left.').sents[0][-1] == '"'


def test_long_sentences_are_cut_at_word_boundaries():
    text = " ".join(f"w{i}" for i in range(1000))
    split = split_text(text)
    check(text, split)
    assert [len(s) for s in split.sents] == [MAX_SENT_WORDS] * 5
    rows = "\n".join(" ".join(f"r{r}c{c}" for c in range(30)) for r in range(20))  # a table: 600 words, no stops
    split = split_text(rows)
    check(rows, split)
    assert all(len(s) % 30 == 0 for s in split.sents[:-1]) and len(split.sents) > 1
    clauses = " ".join(f"x{i}," if i % 7 == 6 else f"x{i}" for i in range(700))
    split = split_text(clauses)
    check(clauses, split)
    assert all(s[-1].endswith(",") for s in split.sents[:-1])


def test_200k_characters():
    rng = random.Random(0)
    pieces = ["word", "Mr.", "U.S.", "3.5", ".", ",", '"', "(", ")", "'s", "n't", "\n", "\n\n", "\r\n", "\t", "  ",
              "é", "e\u0301", "東京", "。", "مرحبا", "👍🏽", "🇫🇷", "\x00", "\x07", "\u2028", "\u200d", "—", "..."]
    text = ""
    while len(text) < 200_000:
        text += rng.choice(pieces) + rng.choice(["", " ", " ", " "])
    split = split_text(text)
    check(text, split)
    assert len(split.sents) > 100


def test_document_from_text():
    text = "Alice works for Acme. She lives in Paris."
    doc = document_from_text(text, title="T", source="raw:1")
    split = split_text(text)
    assert (doc.title, doc.source, doc.text) == ("T", "raw:1", text)
    assert doc.sents == split.sents == [["Alice", "works", "for", "Acme", "."], ["She", "lives", "in", "Paris", "."]]
    assert doc.word_offsets == split.offsets
    assert doc.entities == [] and doc.relations is None and doc.candidate_pairs is None
    assert doc.num_words == 10


def test_unknown_splitter():
    with pytest.raises(ValueError, match="splitter"):
        split_text("a", splitter="nltk")  # type: ignore[arg-type]


@pytest.mark.parametrize("text", UNICODE_TEXTS[:6])
def test_sentencex_splitter(text):
    pytest.importorskip("sentencex")
    check(text, split_text(text, splitter="sentencex"))
