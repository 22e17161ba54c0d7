"""The spoken-QA "has answer" rule (DPR / UltraEval-Audio): behaviour cases and tokenizer equivalence."""

from __future__ import annotations

import random
import unicodedata

import pytest

from most_eval_tasks.sqa.has_answer import has_answer, matching_answer, tokenize


@pytest.mark.parametrize("answers, response, expected", [
    # case and surrounding punctuation
    (["Paris"], "The capital of France is PARIS.", True),
    (["paris"], "Paris, of course!", True),
    # whole tokens only: no substring matches
    (["Paris"], "Parisian food", False),
    (["cat"], "concatenate", False),
    # articles are NOT stripped (unlike SQuAD normalisation)
    (["The Beatles"], "It was Beatles.", False),
    (["Beatles"], "It was the Beatles.", True),
    (["a dog"], "a dog", True),
    (["a dog"], "the dog", False),
    # punctuation is tokenised, not removed
    (["U.S."], "He lived in the U.S. for years", True),
    (["U.S."], "He lived in the US for years", False),
    (["US"], "He lived in the U.S. for years", False),
    (["Washington, D.C."], "washington , d . c .", True),
    (["rock-and-roll"], "rock and roll", False),
    (["rock-and-roll"], "Rock-and-Roll!", True),
    (["O'Neil"], "o ' neil", True),
    # diacritics: NFD makes composed == decomposed, but accents are kept
    (["Pelé"], "Pele\u0301 scored", True),
    (["Pele\u0301"], "Pelé scored", True),
    (["Pelé"], "Pele scored", False),
    (["Pele"], "Pelé scored", False),
    (["Zürich"], "ZÜRICH", True),
    # numbers: digits and words are different tokens
    (["4"], "There are four seasons.", False),
    (["four"], "There are 4 seasons.", False),
    (["4"], "There are 4 seasons.", True),
    (["1,000"], "about 1,000 people", True),
    (["1000"], "about 1,000 people", False),
    (["3.14"], "pi is 3.14159", False),
    (["1969"], "In1969", False),
    # multi-word answers must be contiguous
    (["New York City"], "new york city", True),
    (["New York City"], "New York is a city", False),
    (["New York City"], "I love New  York\tCity", True),
    # several aliases: any one suffices
    (["JFK", "John F. Kennedy", "Kennedy"], "It was president kennedy.", True),
    (["JFK", "John F. Kennedy"], "John F Kennedy", False),
    (["Mount Everest", "Everest"], "everest", True),
    # empty cases: no aliases never match; an alias without tokens always matches (as DPR/UltraEval)
    ([], "anything", False),
    ([""], "anything", True),
    (["  "], "", True),
    (["Paris"], "", False),
    # a bare string is one alias
    ("Paris", "paris!", True),
    # non-ASCII scripts
    (["東京"], "首都は東京です", False),  # CJK letters run together into one token
    (["東京"], "東京 です", True),
    (["Αθήνα"], "ΑΘΗΝΑ", False),  # the capitals carry no accent: different tokens
    (["Αθήνα"], "αθήνα", True),
])
def test_has_answer_cases(answers, response, expected):
    assert has_answer(answers, response) is expected


def test_matching_answer_names_the_alias():
    assert matching_answer(["JFK", "Kennedy"], "Kennedy did") == "Kennedy"
    assert matching_answer(["JFK", "Kennedy"], "Nixon did") is None
    assert matching_answer([1969], "in 1969") == 1969  # non-string alias compared as str()


def test_tokenize():
    assert tokenize("Hello, World! It's 3.5°C") == [
        "hello", ",", "world", "!", "it", "'", "s", "3", ".", "5", "°", "c"]
    assert tokenize("naïve café") == [unicodedata.normalize("NFD", "naïve"), unicodedata.normalize("NFD", "café")]
    assert tokenize("a\u200bb\u00a0c\td") == ["a", "b", "c", "d"]  # format char / nbsp / tab only split
    assert tokenize("") == [] and tokenize("   ") == []
    assert tokenize("İstanbul") == ["i\u0307stanbul"]  # lower-cased after tokenising


# ---------------------------------------------------------------------------------------------------------------
# equivalence with DPR's SimpleTokenizer pattern, run with the `regex` module when it is installed
# ---------------------------------------------------------------------------------------------------------------
PATTERN = r"([\p{L}\p{N}\p{M}]+)|([^\p{Z}\p{C}])"  # DPR SimpleTokenizer: ALPHA_NUM | NON_WS


def _reference_tokens(regex, text):
    compiled = regex.compile(PATTERN, flags=regex.IGNORECASE + regex.UNICODE + regex.MULTILINE)
    return [m.group().lower() for m in compiled.finditer(unicodedata.normalize("NFD", text))]


def test_tokenizer_matches_dpr_pattern_on_every_assigned_code_point():
    import regex  # a transformers dependency: always installed

    compiled = regex.compile(PATTERN, flags=regex.IGNORECASE + regex.UNICODE + regex.MULTILINE)
    differ = []
    for cp in range(0x110000):
        ch = chr(cp)
        if unicodedata.category(ch) in ("Cn", "Cs"):
            continue  # unassigned in Python's Unicode version (regex may know newer characters), surrogates
        text = unicodedata.normalize("NFD", "a" + ch + "b")
        if tokenize(text) != [m.group().lower() for m in compiled.finditer(text)]:
            differ.append(hex(cp))
    assert not differ, differ[:20]


def test_tokenizer_matches_dpr_pattern_on_random_text():
    import regex  # a transformers dependency: always installed

    rng = random.Random(0)
    alphabet = ("abcXYZ019 \t\n.,;:'\"-!?()[]/$%&*+=<>@#_~`^|\\\u00a0\u2009\u200b\u00ad\u0301\u0308"
                "éÉñÑüÜßİıﬁ①½²٣४一二東京ΑθήναЖжاب😀👍🏽\u202e\ufeff\x00\x1f")
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        assert tokenize(text) == _reference_tokens(regex, text), repr(text)
