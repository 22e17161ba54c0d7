"""Tests that kill the mutants of ZeroSpeech 2021 scoring (tasks/slm/zerospeech.py) that its own tests let survive
(benchmarks/mutation/README.md): lexical / syntactic scoring of a gold file, the row form (gold_from_rows and the
*_from_pairs aggregates), submission files and the gold reader's errors.

Every expected value here is computed independently of the code under test: a hand count, a plain-Python loop or a
numpy call written out in the test, never a second call of the same function. Sections follow the modules in the
mutation report; each test names the mutant family it kills. The kill tests of the other modules are in the other
tests/test_mutants_*.py files (one per subject).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from most_eval_tasks.slm import zerospeech as ZR


# ------------------------------------------------------------------------------------------ tasks/slm/zerospeech.py


def _lexical_gold(tmp_path: Path):
    rows = ["filename,id,voice,frequency,word,phones,length,correct",
            "w1a,1,a,3,cat,k a t,3,1", "n1a,1,a,,,k a p,,0",
            "w1b,1,b,3,cat,k a t,3,1", "n1b,1,b,,,k a p,,0",
            "w2a,2,a,0,zyx,z y x,3,1", "n2a,2,a,,,z y p,,0",
            "w3a,3,a,50,dog,d o g,3,1",  # no partner on (voice, id): unpaired
            ]
    path = tmp_path / "gold.csv"
    path.write_text("\n".join(rows) + "\n")
    return ZR.read_gold(path, "lexical")


def test_lexical_unpaired_missing_and_allow_missing(tmp_path):
    gold = _lexical_gold(tmp_path)
    scores = {"w1a": -1.0, "n1a": -2.0, "w1b": -3.0, "n1b": -2.0, "w2a": -1.0, "n2a": -1.0, "w3a": 0.0}
    result = ZR.score_lexical(gold, scores)
    assert result.unpaired_stems == ["w3a"]
    # per id: id 1 = mean(1, 0) = 0.5 (2 pairs), id 2 = 0.5 (tie); all = mean of the two
    assert [(i.key, i.n_pairs, i.score) for i in result.items] == [((1,), 2, 0.5), ((2,), 1, 0.5)]
    assert result.all == result.all_exact == 0.5 and (result.n_items, result.n_pairs) == (2, 3)
    summary = result.summary()
    assert (summary["unpaired"], summary["missing"], summary["n_items"], summary["n_pairs"]) == (1, 0, 2, 3)
    assert set(summary) == {"all", "in_vocab", "all_exact", "in_vocab_exact", "n_items", "n_pairs", "by_frequency",
                            "by_length", "unpaired", "missing"}
    partial = {k: v for k, v in scores.items() if k != "n1b"}
    with pytest.raises(ValueError, match=r"^1 of 7 gold stems have no score: n1b$"):
        ZR.score_lexical(gold, partial)  # allow_missing defaults to False
    kept = ZR.score_lexical(gold, partial, allow_missing=True)
    assert kept.missing_stems == ["n1b"] and kept.n_pairs == 2  # the pair that needs n1b is left out, not scored 0
    assert [(i.key, i.n_pairs, i.score) for i in kept.items] == [((1,), 1, 1.0), ((2,), 1, 0.5)]
    with pytest.raises(ValueError) as err:
        ZR.score_lexical(gold, {"w3a": 1.0}, allow_missing=True)
    assert str(err.value) == "no scorable (word, non-word) pair"


def test_syntactic_consistency_flags_and_items(tmp_path):
    rows = ["filename,id,voice,type,subtype,transcription,correct",
            "g1,1,a,t,s,good one,1", "b1,1,a,t,s,bad one,0",
            "g2,2,a,t,s,good two,1", "b2,9,a,t,s,bad two,0",  # same subtype, different id: inconsistent
            "g3,3,a,t,s,good three,1", "b3,3,a,t,s,bad three,0"]
    path = tmp_path / "gold.csv"
    path.write_text("\n".join(rows) + "\n")
    gold = ZR.read_gold(path, "syntactic")
    result = ZR.score_syntactic(gold, {"g1": 0.0, "b1": -1.0, "g2": -1.0, "b2": 0.0, "g3": 0.0, "b3": 0.0})
    assert result.mismatched_pairs == [1]
    assert [p.consistent for p in result.pairs] == [True, False, True]
    assert [(i.key, i.n_pairs, i.score) for i in result.items] == [(("t", "s", 1), 1, 1.0), (("t", "s", 2), 1, 0.0),
                                                                     (("t", "s", 3), 1, 0.5)]
    assert result.n_items == 3 and result.score_exact == pytest.approx(0.5) and result.score == 0.5
    assert result.summary() == {"score": 0.5, "score_exact": pytest.approx(0.5), "n_items": 3, "n_pairs": 3,
                                "by_type": [{"label": "t", "n": 3, "score": pytest.approx(0.5),
                                             "std": pytest.approx(0.5), "score_rounded": 0.5}],
                                "mismatched": 1, "missing": 0}
    with pytest.raises(ValueError) as err:
        ZR.score_syntactic(gold, {}, allow_missing=True)
    assert str(err.value) == "no scorable (correct, incorrect) pair"
    with pytest.raises(ValueError) as err:
        ZR.score_syntactic(gold.table.iloc[:5], {"g1": 0.0}, allow_missing=True)
    assert str(err.value) == ("syntactic gold has 3 correct and 2 incorrect rows: positional pairing needs as many "
                              "of each")


def test_score_file_error_text_without_a_line(tmp_path):
    assert str(ZR.ScoreFileError(tmp_path / "g.csv", None, "empty gold file")) == f"{tmp_path / 'g.csv'}: empty gold file"
    assert str(ZR.ScoreFileError(tmp_path / "g.csv", 3, "bad")) == f"{tmp_path / 'g.csv'}:3: bad"


# -------------------------------------------------------------------- slm/zerospeech.py: gold_from_rows (row form)


def test_zerospeech_row_form_names_rows_and_syntactic_pair_records(tmp_path):
    rows = [{"filename": "g1.wav", "id": 1, "voice": "a", "type": "t", "subtype": "s", "transcription": "ok",
             "correct": True},
            {"filename": "g1", "id": 1, "voice": "a", "type": "t", "subtype": "s", "transcription": None,
             "correct": 0}]
    with pytest.raises(ZR.ScoreFileError) as err:
        ZR.gold_from_rows(rows, "syntactic", tmp_path / "src")
    assert str(err.value) == f"{tmp_path / 'src'}:row 2: filename 'g1' already listed on row 1"
    rows[1]["filename"] = "b1"
    gold = ZR.gold_from_rows(rows, "syntactic", tmp_path / "src")
    (pair,) = ZR.score_syntactic(gold, {"g1": -1.0, "b1": -2.0}).pairs
    assert pair.to_record() == {"position": 0, "id": 1, "voice": "a", "type": "t", "subtype": "s",
                                "correct_stem": "g1", "incorrect_stem": "b1", "correct_score": -1.0,
                                "incorrect_score": -2.0, "outcome": 1.0, "sentence": "ok", "non_sentence": None,
                                "consistent": True}


def _lexical_rows():
    return [{"filename": "w1.wav", "id": 7.0, "voice": "v", "frequency": 3.0, "word": "cat", "phones": "k a t",
             "length": 3, "correct": True, "extra": "ignored"},
            {"filename": "n1.wav.wav", "id": 7, "voice": "v", "frequency": None, "word": float("nan"),
             "phones": "k o t", "correct": False},  # no "length" key at all: an empty optional cell
            {"filename": "w2", "id": "8", "voice": 2, "frequency": "0", "word": "dog", "phones": "d o g",
             "length": "3", "correct": "1"},
            {"filename": "n2", "id": 8, "voice": "2", "frequency": float("nan"), "word": None, "phones": None,
             "length": None, "correct": "0"}]


def test_zerospeech_gold_from_rows_converts_cells_as_gold_csv(tmp_path):
    """Kills ``gold_from_rows`` mutants: null / NaN optional cells become empty, an integral float loses ".0",
    ``correct`` from a bool, ``.wav`` removed once, header = the kind's gold columns only, the path kept."""
    gold = ZR.gold_from_rows(iter(_lexical_rows()), "lexical", str(tmp_path / "src"))
    assert gold.kind == "lexical" and gold.path == tmp_path / "src"
    t = gold.table
    assert list(t.columns) == ["filename", "id", "voice", "frequency", "word", "phones", "length", "correct"]
    assert t["filename"].tolist() == ["w1", "n1.wav", "w2", "n2"]
    assert t["id"].tolist() == [7, 7, 8, 8] and t["id"].dtype == np.int64
    assert t["voice"].tolist() == ["v", "v", "2", "2"]
    assert t["correct"].tolist() == [1, 0, 1, 0]
    assert [None if v is pd.NA else v for v in t["frequency"].tolist()] == [3, None, 0, None]
    assert [None if v is pd.NA else v for v in t["length"].tolist()] == [3, None, 3, None]
    assert t["word"].isna().tolist() == [False, True, False, True] and t["word"][[0, 2]].tolist() == ["cat", "dog"]
    assert t["phones"].isna().tolist() == [False, False, False, True]
    assert t["phones"][:3].tolist() == ["k a t", "k o t", "d o g"]
    syn = ZR.gold_from_rows([{"filename": "g", "id": 1, "voice": "a", "type": "t", "subtype": "s",
                              "transcription": float("nan"), "correct": 1.0}], "syntactic", tmp_path / "s")
    assert list(syn.table.columns) == ["filename", "id", "voice", "type", "subtype", "transcription", "correct"]
    assert syn.table["transcription"].isna().tolist() == [True] and syn.table["correct"].tolist() == [1]


def test_zerospeech_gold_from_rows_errors_name_the_row(tmp_path):
    src = tmp_path / "src"
    with pytest.raises(ValueError) as err:
        ZR.gold_from_rows([], "phonetic", src)
    assert str(err.value) == "kind must be one of ('lexical', 'syntactic'), got 'phonetic'"
    cases = [(2, "voice", None, "'voice' is null"),
             (3, "id", float("nan"), "'id' is null"),
             (1, "filename", None, "'filename' is null"),
             (4, "frequency", True, "frequency is a bool (true), not text or a number"),
             (2, "voice", False, "voice is a bool (false), not text or a number"),
             (3, "correct", "2", "'correct' must be 0 or 1, got '2'")]
    for row, column, value, message in cases:
        rows = _lexical_rows()
        rows[row - 1][column] = value
        with pytest.raises(ZR.ScoreFileError) as err:
            ZR.gold_from_rows(rows, "lexical", src)
        assert str(err.value) == f"{src}:row {row}: {message}", (column, value)
        assert err.value.line == f"row {row}" and err.value.path == src
    rows = _lexical_rows()
    del rows[0]["voice"]  # a missing required key is a null cell
    with pytest.raises(ZR.ScoreFileError) as err:
        ZR.gold_from_rows(rows, "lexical", src)
    assert str(err.value) == f"{src}:row 1: 'voice' is null"
    rows = _lexical_rows()
    rows[0]["correct"] = False  # a bool correct converts: two non-words, and the first word row now lacks nothing
    assert ZR.gold_from_rows(rows, "lexical", src).table["correct"].tolist() == [0, 0, 1, 0]
    with pytest.raises(ZR.ScoreFileError) as err:
        ZR.gold_from_rows([], "lexical", src)
    assert str(err.value) == f"{src}: gold file lists no wav"


def _lex_record(i, voice, outcome, frequency, length):
    return {"id": i, "voice": voice, "correct_stem": f"w{i}{voice}", "incorrect_stem": f"n{i}{voice}",
            "correct_score": -1.0, "incorrect_score": -1.0 - (outcome - 0.5), "outcome": outcome,
            "word": f"w{i}", "non_word": f"n{i}", "frequency": frequency, "band": None, "length": length}


def test_zerospeech_lexical_from_pairs_bands_lengths_and_in_vocab_by_hand():
    """Kills ``_lexical_result`` mutants on by_length scores, in_vocab_exact (in-vocabulary ids only, NaN-free),
    Item frequency/band, and ``lexical_from_pairs`` / ``_pair_frame`` mutants (empty unpaired/missing lists,
    nullable Int64 frequency/length: a pair may carry no frequency, ``LexicalPair.frequency: int | None``)."""
    records = [_lex_record(1, "a", 1.0, 0, 3), _lex_record(1, "b", 0.0, 0, 3),  # id 1: oov, score 0.5
               _lex_record(2, "a", 1.0, 3, 3),                                  # id 2: band 1-5, score 1.0
               _lex_record(3, "a", 0.5, 50, 4),                                 # id 3: band 21-100, score 0.5
               _lex_record(4, "a", 0.0, None, None)]                            # id 4: no band, no length
    r = ZR.lexical_from_pairs(records)
    assert r.unpaired_stems == [] and r.missing_stems == []
    assert (r.n_items, r.n_pairs) == (4, 5)
    assert r.all_exact == 0.5 and r.all == 0.5  # (0.5 + 1 + 0.5 + 0) / 4
    assert r.in_vocab == 0.75 and r.in_vocab_exact == 0.75  # ids 2 and 3 only (1 is oov, 4 has no band)
    assert [(b.label, b.n, b.score) for b in r.by_frequency] == [
        ("oov", 1, 0.5), ("1-5", 1, 1.0), ("6-20", 0, None), ("21-100", 1, 0.5), (">100", 0, None)]
    assert [(b.label, b.n, b.score, b.score_rounded) for b in r.by_length] == [(3, 2, 0.75, 0.75), (4, 1, 0.5, 0.5)]
    assert r.by_length[0].std == pytest.approx(math.sqrt(((0.5 - 0.75) ** 2 + (1.0 - 0.75) ** 2) / 1), rel=1e-12)
    assert r.by_length[1].std is None
    assert [(it.key, it.correct_text, it.incorrect_text, it.n_pairs, it.score, it.frequency, it.band, it.length)
            for it in r.items] == [((1,), "w1", "n1", 2, 0.5, 0, "oov", 3), ((2,), "w2", "n2", 1, 1.0, 3, "1-5", 3),
                                   ((3,), "w3", "n3", 1, 0.5, 50, "21-100", 4),
                                   ((4,), "w4", "n4", 1, 0.0, None, None, None)]
    assert [(p.frequency, p.band, p.length) for p in r.pairs][-2:] == [(50, "21-100", 4), (None, None, None)]
    # integers stay integers (not 3.0), also beside a missing value (kills lexical_from_pairs__mutmut_9)
    assert all(type(v) is int for it in r.items[:3] for v in (it.frequency, it.length))
    assert all(type(v) is int for p in r.pairs[:4] for v in (p.frequency, p.length))


def test_zerospeech_lexical_all_oov_has_nan_in_vocab():
    """Kills ``_lexical_result__mutmut_102`` (``np.average`` over no band would raise): no in-vocabulary id gives
    NaN for both in-vocabulary numbers."""
    r = ZR.lexical_from_pairs([_lex_record(1, "a", 1.0, 0, 3), _lex_record(2, "a", 0.0, 0, 5)])
    assert math.isnan(r.in_vocab) and math.isnan(r.in_vocab_exact)
    assert r.all == 0.5 and [b.n for b in r.by_frequency] == [2, 0, 0, 0, 0]


def test_zerospeech_syntactic_from_pairs_lists_are_empty_not_none():
    """Kills ``syntactic_from_pairs__mutmut_76`` (missing_stems None) and checks mismatched positions."""
    rec = {"position": 0, "id": 1, "voice": "a", "type": "t", "subtype": "s", "correct_stem": "g",
           "incorrect_stem": "b", "correct_score": -1.0, "incorrect_score": -2.0, "outcome": 1.0, "sentence": "ok", "non_sentence": None,
           "consistent": True}
    r = ZR.syntactic_from_pairs([rec, {**rec, "position": 3, "correct_stem": "g2", "incorrect_stem": "b2",
                                       "outcome": 0.0, "consistent": False}])
    assert r.missing_stems == [] and r.mismatched_pairs == [3]
    assert (r.score, r.score_exact, r.n_items, r.n_pairs) == (0.5, 0.5, 1, 2)


def test_zerospeech_submission_writing_and_reading_errors(tmp_path):
    """Kills ``submission_text`` (the stem check's ``or``, the space test, both messages), ``write_submission``
    (``parents=True``: missing folders are created), ``read_submission`` (the file is named a "submission" when it
    cannot be opened) and ``score_files`` (the submission is checked against the gold stems) mutants."""
    for stem in ("a b", "", " "):
        with pytest.raises(ValueError) as err:
            ZR.submission_text({"ok": 1.0, stem: 1.0})
        assert str(err.value) == f"stem {stem!r} cannot be written (empty or contains a space)"
    for bad in (math.inf, math.nan):
        with pytest.raises(ValueError) as err:
            ZR.submission_text({"s1": bad})
        assert str(err.value) == f"score of 's1' is not finite: {bad!r}"
    assert ZR.submission_text({"a": -1, "b": 0.1}) == "a -1.0\nb 0.1\n"
    deep = tmp_path / "x" / "y" / "sub.txt"
    assert ZR.write_submission(deep, {"é": 2.5}) == deep
    assert deep.read_bytes() == "é 2.5\n".encode("utf-8")
    missing = tmp_path / "nope.txt"
    with pytest.raises(ZR.ScoreFileError) as err:
        ZR.read_submission(missing)
    assert str(err.value) == f"{missing}: cannot open submission: not found"
    gold = tmp_path / "gold.csv"
    gold.write_text("filename,id,voice,type,subtype,transcription,correct\n"
                    "g1,1,a,t,s,ok,1\nb1,1,a,t,s,no,0\n", encoding="utf-8")
    sub = tmp_path / "sub_extra.txt"
    sub.write_text("g1 -1.0\nb1 -2.0\nzz 0.0\n", encoding="utf-8")
    with pytest.raises(ZR.ScoreFileError) as err:
        ZR.score_files(gold, sub, "syntactic")
    assert str(err.value) == f"{sub}:3: unknown stem 'zz'"
    sub.write_text("g1 -1.0\n", encoding="utf-8")
    with pytest.raises(ZR.ScoreFileError) as err:
        ZR.score_files(gold, sub, "syntactic")
    assert str(err.value) == f"{sub}: 1 of 2 stems missing: b1"


def test_zerospeech_read_submission_hint_and_five_missing(tmp_path):
    """Kills ``read_submission`` message mutants: the folder/extension hint (only when the stem's own stem is
    expected), and ", ..." only beyond five missing stems (exactly five: none)."""
    sub = tmp_path / "s.txt"
    sub.write_text("g1.wav -1.0\n", encoding="utf-8")
    with pytest.raises(ZR.ScoreFileError) as err:
        ZR.read_submission(sub, expected_stems=["g1"])
    assert str(err.value) == f"{sub}:1: unknown stem 'g1.wav' (give the wav name without folder or extension)"
    sub.write_text("a -1.0\n", encoding="utf-8")
    expected = ["a", "b", "c", "d", "e", "f"]
    with pytest.raises(ZR.ScoreFileError) as err:
        ZR.read_submission(sub, expected_stems=expected)
    assert str(err.value) == f"{sub}: 5 of 6 stems missing: b, c, d, e, f"
    with pytest.raises(ZR.ScoreFileError) as err:
        ZR.read_submission(sub, expected_stems=[*expected, "g"])
    assert str(err.value) == f"{sub}: 6 of 7 stems missing: b, c, d, e, f, ..."


_SYN_HEADER = "filename,id,voice,type,subtype,transcription,correct"


def test_zerospeech_read_gold_file_errors_and_csv_details(tmp_path):
    """Kills ``read_gold`` / ``_parse_gold`` / ``_open_text`` mutants: each error's exact text, path and line; a
    BOM skipped (utf-8-sig); csv read with ``newline=""`` (a quoted CR LF stays in the field); blank lines (``[]``
    and a lone ``""``) skipped without stopping the file."""
    p = tmp_path / "gold.csv"

    def error(text=None, data=None, kind="syntactic"):
        if data is None:
            p.write_text(text, encoding="utf-8", newline="")
        else:
            p.write_bytes(data)
        with pytest.raises(ZR.ScoreFileError) as err:
            ZR.read_gold(p, kind)
        return err.value

    with pytest.raises(ValueError) as err:
        ZR.read_gold(p, "lex")
    assert str(err.value) == "kind must be one of ('lexical', 'syntactic'), got 'lex'"
    e = error("")
    assert (str(e), e.path, e.line) == (f"{p}: empty gold file", p, None)
    e = error("filename,id\n")
    assert (str(e), e.line) == (f"{p}:1: syntactic gold header lacks column(s) voice, type, subtype, transcription, "
                                "correct (has: filename, id)", 1)
    e = error(f"{_SYN_HEADER},id\n")
    assert (str(e), e.path, e.line) == (f"{p}:1: duplicate column names in header", p, 1)
    e = error(data=f"{_SYN_HEADER}\ng1,1,a,t,s,caf\xe9,1\n".encode("latin-1"))
    assert (str(e), e.path, e.line) == (f"{p}: not valid UTF-8 (byte 0xe9)", p, None)
    missing = tmp_path / "none.csv"
    with pytest.raises(ZR.ScoreFileError) as err:
        ZR.read_gold(missing, "syntactic")
    assert str(err.value) == f"{missing}: cannot open gold file: not found"  # the path is not repeated
    p.write_bytes(("\ufeff" + _SYN_HEADER + "\r\n" + 'g1,1,a,t,s,"two\r\nlines",1\r\n' + "\r\n" + '""\r\n'
                   + "b1,1,a,t,s,no,0\r\n").encode("utf-8"))
    gold = ZR.read_gold(p, "syntactic")
    assert gold.stems == ["g1", "b1"]
    assert gold.table["transcription"].tolist() == ["two\r\nlines", "no"]
    assert list(gold.table.columns) == _SYN_HEADER.split(",")
    assert gold.table["correct"].dtype == np.int64  # kills _gold_table__mutmut_90 (astype(None): float64)
    # an extra column named like a lexical one is not validated in a syntactic gold (kills _gold_table__mutmut_42)
    p.write_text(_SYN_HEADER + ",length\ng1,1,a,t,s,ok,1,long\nb1,1,a,t,s,no,0,\n", encoding="utf-8")
    assert ZR.read_gold(p, "syntactic").table["length"].tolist() == ["long", ""]
    # nullable Int64 even when no row has a frequency or length (non-words only; kills _gold_table__mutmut_121/123)
    p.write_text("filename,id,voice,frequency,word,phones,length,correct\nn1,1,a,,,x,,0\nn2,2,a,,,y,,0\n",
                 encoding="utf-8")
    lex = ZR.read_gold(p, "lexical").table
    assert str(lex["frequency"].dtype) == "Int64" and str(lex["length"].dtype) == "Int64"


def test_zerospeech_outcomes_compare_as_floats():
    """Kills ``outcomes__mutmut_3``/``_5``: scores given as text compare as numbers (2 < 10), not as strings."""
    got = ZR.outcomes(np.array(["2", "3", "1e1"]), np.array(["10", "3", "9"]))
    assert got.tolist() == [0.0, 0.5, 1.0]


def test_zerospeech_missing_scores_message_and_integer_scores(tmp_path):
    """Kills ``_attach_scores`` mutants: the "no score" message lists five stems joined by ", " and adds ", ..."
    only beyond five; integer scores are read as floats (``dtype=float``)."""
    rows = "".join(f"g{k},{k},a,t,s,x,1\nb{k},{k},a,t,s,y,0\n" for k in range(4))
    gold = tmp_path / "gold.csv"
    gold.write_text(_SYN_HEADER + "\n" + rows, encoding="utf-8")
    g = ZR.read_gold(gold, "syntactic")
    with pytest.raises(ValueError) as err:
        ZR.score_syntactic(g, {"g0": 1.0, "b0": 0.0, "g1": 1.0})
    assert str(err.value) == "5 of 8 gold stems have no score: b1, g2, b2, g3, b3"
    with pytest.raises(ValueError) as err:
        ZR.score_syntactic(g, {"g0": 1.0, "b0": 0.0})
    assert str(err.value) == "6 of 8 gold stems have no score: g1, b1, g2, b2, g3, ..."
    r = ZR.score_syntactic(g, {f"{c}{k}": (-1 if c == "g" else -2) for k in range(4) for c in "gb"})
    assert all(type(p.correct_score) is float and type(p.incorrect_score) is float for p in r.pairs)
    assert [p.correct_score for p in r.pairs] == [-1.0] * 4


def test_zerospeech_submission_is_utf8_whatever_the_locale(tmp_path):
    """``write_submission`` names its encoding: under a plain C locale (ASCII, no UTF-8 mode) a non-ASCII file stem
    is still written as UTF-8 (kills the ``encoding=None`` mutants, which only differ under such a locale)."""
    import subprocess
    import sys

    out = tmp_path / "lexical" / "dev.txt"
    code = ("import sys; from most_eval_tasks.slm.zerospeech import write_submission; "
            "write_submission(sys.argv[1], {'caf\\u00e9_1': 1.5})")
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0"}
    proc = subprocess.run([sys.executable, "-c", code, str(out)], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "caf\u00e9_1".encode("utf-8") in out.read_bytes()
