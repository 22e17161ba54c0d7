"""sLM21 (sWUGGY / sBLIMP) scoring: ours against the official scorer, digit for digit, plus bad-input errors.

Two reference paths, named in the test ids so a run shows which one ran:

* ``official``: the official ``zerospeech-benchmarks==0.9`` scoring code run in a pandas<3 venv built by
  ``tests/official/zr_official.py`` (cached under ~/.cache/most-eval/zr-official). Exact equality is required.
  When that environment cannot be built these tests are *skipped with the reason* (``-ra`` lists it);
  ``MOST_EVAL_ZR_OFFICIAL=1`` turns that skip into a failure, ``=0`` disables the path.
* ``independent``: a plain-Python re-implementation written below from the protocol text (dicts and loops, no
  pandas), always run.
"""

from __future__ import annotations

import math
import random
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from most_eval_tasks.slm import zerospeech as zr

sys.path.insert(0, str(Path(__file__).parent / "official"))
import zr_official  # noqa: E402

VOICES = ["Alex", "Bruce", "Fred", "Junior", "Kathy", "Ralph", "Vicki", "Victoria",
          "v9", "v10", "v11", "v12", "v13", "v14", "v15", "v16"]
FREQUENCIES = [0, 0, 1, 3, 4, 5, 12, 19, 20, 55, 99, 100, 250, 10_000]


# ---------------------------------------------------------------------------------------------------------------
# random data sets
# ---------------------------------------------------------------------------------------------------------------
def _stem(rng: random.Random, used: set) -> str:
    while True:
        stem = "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") for _ in range(11))
        if stem not in used:
            used.add(stem)
            return stem


def _score(rng: random.Random) -> float:
    """Scores with many exact ties (small grid) and some continuous values."""
    if rng.random() < 0.7:
        return float(rng.randint(-3, 3))
    return round(rng.gauss(-20.0, 5.0), 6)


def make_lexical(tmp: Path, name: str, seed: int, n_ids: int = 120, max_voices: int = 4,
                 spelled_non_words: bool = True, unpaired: bool = False, shuffle: bool = True):
    rng = random.Random(seed)
    used: set = set()
    rows = []
    for i in range(1, n_ids + 1):
        word = f"w{i}x"
        phones = " ".join(rng.choice("aeioubdgkpt") for _ in range(rng.randint(2, 7)))
        frequency = str(rng.choice(FREQUENCIES))
        length = str(len(phones.split()))
        voices = rng.sample(VOICES[:max_voices], rng.randint(1, max_voices))
        for voice in voices:
            rows.append([_stem(rng, used), str(i), voice, frequency, word, phones, length, "1"])
            if unpaired and rng.random() < 0.05:
                continue  # a word without its non-word for this voice
            nw_phones = phones[::-1]
            rows.append([_stem(rng, used), str(i), voice, "", f"n{i}z" if spelled_non_words else "", nw_phones,
                         length, "0"])
    if shuffle:
        rng.shuffle(rows)
    header = ["filename", "id", "voice", "frequency", "word", "phones", "length", "correct"]
    return _write(tmp, name, header, rows, rng)


def make_syntactic(tmp: Path, name: str, seed: int, n_pairs: int = 300, max_voices: int = 3,
                   mismatched: int = 0):
    rng = random.Random(seed)
    used: set = set()
    types = {"morphology": ["anaphor_agreement", "irregular_forms"], "syntax": ["island", "binding", "filler_gap"],
             "semantics": ["quantifiers"]}
    pairs = []
    while len(pairs) < n_pairs:
        kind = rng.choice(sorted(types))
        subtype = rng.choice(types[kind])
        item = str(rng.randint(1, 40))
        for voice in rng.sample(VOICES[:max_voices], rng.randint(1, max_voices)):
            sentence = f"{kind} {subtype} {item} good"
            pairs.append(([_stem(rng, used), item, voice, kind, subtype, sentence, "1"],
                          [_stem(rng, used), item, voice, kind, subtype, sentence.replace("good", "bad"), "0"]))
    rng.shuffle(pairs)
    good = [p[0] for p in pairs]
    bad = [p[1] for p in pairs]
    for _ in range(mismatched):  # rows whose positional partner is another item (positional pairing still applies)
        a, b = rng.sample(range(len(bad)), 2)
        bad[a], bad[b] = bad[b], bad[a]
    rows, gi, bi = [], 0, 0  # interleave, keeping each side's relative order
    while gi < len(good) or bi < len(bad):
        if bi >= len(bad) or (gi < len(good) and rng.random() < 0.5):
            rows.append(good[gi]); gi += 1
        else:
            rows.append(bad[bi]); bi += 1
    header = ["filename", "id", "voice", "type", "subtype", "transcription", "correct"]
    return _write(tmp, name, header, rows, rng)


def _write(tmp: Path, name: str, header, rows, rng: random.Random):
    gold = tmp / f"{name}_gold.csv"
    with open(gold, "w", encoding="utf-8") as f:
        f.write(",".join(header) + "\n")
        for row in rows:
            f.write(",".join(row) + "\n")
    scores = {row[0]: _score(rng) for row in rows}
    order = list(scores)
    rng.shuffle(order)  # submission order is free
    submission = zr.write_submission(tmp / f"{name}.txt", {s: scores[s] for s in order})
    return gold, submission


# ---------------------------------------------------------------------------------------------------------------
# independent reference: plain Python from the protocol text
# ---------------------------------------------------------------------------------------------------------------
def _read(gold: Path, submission: Path):
    lines = gold.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    rows = [dict(zip(header, line.split(","))) for line in lines[1:] if line]
    scores = {}
    for line in submission.read_text(encoding="utf-8").splitlines():
        stem, value = line.split(" ")
        scores[stem] = float(value)
    return rows, scores


def _outcome(a: float, b: float) -> float:
    return 1.0 if a > b else 0.5 if a == b else 0.0


def _band(frequency):
    if frequency is None:
        return None
    bands = (("oov", 0, 1), ("1-5", 1, 5), ("6-20", 5, 20), ("21-100", 20, 100), (">100", 100, math.inf))
    for label, low, high in bands:
        if low <= frequency < high:
            return label
    return None


def _stats(values):
    n = len(values)
    mean = sum(values) / n if n else None
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
    return n, mean, std


def independent_lexical(gold: Path, submission: Path) -> dict:
    rows, scores = _read(gold, submission)
    non_words = [r for r in rows if r["correct"] == "0"]
    use_phones = all(r["word"] == "" for r in non_words)
    by_key = defaultdict(list)
    for r in non_words:
        by_key[(r["voice"], r["id"])].append(r)
    per_id: dict[int, dict] = {}
    for w in (r for r in rows if r["correct"] == "1"):
        for nw in by_key[(w["voice"], w["id"])]:
            entry = per_id.setdefault(int(w["id"]), {
                "outcomes": [], "frequency": int(w["frequency"]) if w["frequency"] else None,
                "length": int(w["length"]), "word": w["phones" if use_phones else "word"],
                "non_word": nw["phones" if use_phones else "word"]})
            entry["outcomes"].append(_outcome(scores[w["filename"]], scores[nw["filename"]]))
    ids = sorted(per_id)
    for i in ids:
        per_id[i]["score"] = sum(per_id[i]["outcomes"]) / len(per_id[i]["outcomes"])
    bands = {label: _stats([per_id[i]["score"] for i in ids if _band(per_id[i]["frequency"]) == label])
             for label in zr.FREQUENCY_LABELS}
    lengths = {n: _stats([per_id[i]["score"] for i in ids if per_id[i]["length"] == n])
               for n in sorted({per_id[i]["length"] for i in ids})}
    rounded = [round(per_id[i]["score"], 4) for i in ids]
    in_vocab = [(round(bands[b][1], 4), bands[b][0]) for b in zr.FREQUENCY_LABELS[1:] if bands[b][0]]
    return {"ids": ids, "items": per_id, "bands": bands, "lengths": lengths,
            "all": math.fsum(rounded) / len(rounded),
            "in_vocab": math.fsum(s * n for s, n in in_vocab) / sum(n for _, n in in_vocab)}


def independent_syntactic(gold: Path, submission: Path) -> dict:
    rows, scores = _read(gold, submission)
    good = [r for r in rows if r["correct"] == "1"]
    bad = [r for r in rows if r["correct"] == "0"]
    items: dict[tuple, dict] = {}
    for g, b in zip(good, bad):
        key = (g["type"], g["subtype"], int(g["id"]))
        entry = items.setdefault(key, {"outcomes": [], "sentence": g["transcription"],
                                       "non_sentence": b["transcription"]})
        entry["outcomes"].append(_outcome(scores[g["filename"]], scores[b["filename"]]))
    keys = sorted(items)
    for k in keys:
        items[k]["score"] = sum(items[k]["outcomes"]) / len(items[k]["outcomes"])
    types = {t: _stats([items[k]["score"] for k in keys if k[0] == t]) for t in sorted({k[0] for k in keys})}
    rounded = [round(items[k]["score"], 4) for k in keys]
    return {"keys": keys, "items": items, "types": types, "score": math.fsum(rounded) / len(rounded)}


# ---------------------------------------------------------------------------------------------------------------
# official reference
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def official_env():
    try:
        env = zr_official.ensure_env()
    except zr_official.OfficialUnavailable as error:
        if zr_official.mode() == "require":
            pytest.fail(f"official ZeroSpeech scorer required (MOST_EVAL_ZR_OFFICIAL=1) but unavailable: {error}")
        pytest.skip(f"official ZeroSpeech scorer unavailable ({error}); the independent path ran instead")
    print(f"\n[zerospeech] reference = official zerospeech-benchmarks 0.9 (pandas {env.pandas_version})")
    return env


def _round4(x):
    return None if x is None else float(f"{x:.4f}")


def _nan_to_none(x):
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def _label(x):
    x = _nan_to_none(x)
    return None if x is None else str(x)


LEXICAL_CASES = [  # (dev kwargs, test kwargs)
    (dict(seed=1), dict(seed=2, spelled_non_words=False)),
    (dict(seed=3, max_voices=16, n_ids=80), dict(seed=4, unpaired=True)),
    (dict(seed=5, n_ids=400, max_voices=6), dict(seed=6, n_ids=7, max_voices=2, shuffle=False)),
]


@pytest.mark.parametrize("case", range(len(LEXICAL_CASES)))
def test_lexical_matches_official(case, tmp_path, official_env):
    dev_kw, test_kw = LEXICAL_CASES[case]
    dev = make_lexical(tmp_path, "dev", **dev_kw)
    test = make_lexical(tmp_path, "test", **test_kw)
    official = zr_official.run_official(official_env, "lexical", dev, test)
    for split, files in (("dev", dev), ("test", test)):
        ours = zr.score_files(*files, zr.LEXICAL)
        by_pair = official[f"score_lexical_{split}_by_pair.csv"]
        assert len(by_pair) == ours.n_items
        for row, item in zip(by_pair, ours.items):
            assert row["score"] == item.score_rounded
            assert _label(row["word"]) == item.correct_text and _label(row["non word"]) == item.incorrect_text
        by_frequency = official[f"score_lexical_{split}_by_frequency.csv"]
        assert [r["frequency"] for r in by_frequency] == [b.label for b in ours.by_frequency]
        for row, band in zip(by_frequency, ours.by_frequency):
            assert (row["n"], _nan_to_none(row["score"]), _nan_to_none(row["std"])) == (
                band.n, band.score_rounded, _round4(band.std))
        by_length = official[f"score_lexical_{split}_by_length.csv"]
        assert [(r["length"], r["n"], r["score"], _nan_to_none(r["std"])) for r in by_length] == [
            (b.label, b.n, b.score_rounded, _round4(b.std)) for b in ours.by_length]
        board = official["leaderboard"]
        assert board["all"][split] == ours.all  # exact, to the last digit
        if all(b.n for b in ours.by_frequency[1:]):
            assert board["in_vocab"][split] == ours.in_vocab
        else:  # documented divergence: an empty in-vocab band makes the official number NaN; we skip the band
            assert math.isnan(board["in_vocab"][split]) and not math.isnan(ours.in_vocab)


SYNTACTIC_CASES = [(dict(seed=11), dict(seed=12, max_voices=1)),
                   (dict(seed=13, n_pairs=900, max_voices=5), dict(seed=14, mismatched=6))]


@pytest.mark.parametrize("case", range(len(SYNTACTIC_CASES)))
def test_syntactic_matches_official(case, tmp_path, official_env):
    dev_kw, test_kw = SYNTACTIC_CASES[case]
    dev = make_syntactic(tmp_path, "dev", **dev_kw)
    test = make_syntactic(tmp_path, "test", **test_kw)
    official = zr_official.run_official(official_env, "syntactic", dev, test)
    for split, files in (("dev", dev), ("test", test)):
        ours = zr.score_files(*files, zr.SYNTACTIC)
        by_pair = official[f"score_syntactic_{split}_by_pair.csv"]
        assert [(r["sentence"], r["non sentence"], r["score"]) for r in by_pair] == [
            (i.correct_text, i.incorrect_text, i.score_rounded) for i in ours.items]
        by_type = official[f"score_syntactic_{split}_by_type.csv"]
        assert [(r["type"], r["n"], r["score"], _nan_to_none(r["std"])) for r in by_type] == [
            (b.label, b.n, b.score_rounded, _round4(b.std)) for b in ours.by_type]
        assert official["leaderboard"][split] == ours.score  # exact
        if split == "test":
            assert bool(ours.mismatched_pairs) == bool(test_kw.get("mismatched"))


# ---------------------------------------------------------------------------------------------------------------
# independent reference (always runs)
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs", [kw for case in LEXICAL_CASES for kw in case], ids=lambda kw: f"seed{kw['seed']}")
def test_lexical_matches_independent(kwargs, tmp_path):
    gold, submission = make_lexical(tmp_path, "set", **kwargs)
    ref = independent_lexical(gold, submission)
    ours = zr.score_files(gold, submission, zr.LEXICAL)
    assert [i.key[0] for i in ours.items] == ref["ids"]
    for item in ours.items:
        entry = ref["items"][item.key[0]]
        assert item.score == entry["score"] and item.score_rounded == round(entry["score"], 4)
        assert (item.correct_text, item.incorrect_text) == (entry["word"], entry["non_word"])
        assert item.n_pairs == len(entry["outcomes"])
    for band in ours.by_frequency:
        n, mean, std = ref["bands"][band.label]
        assert band.n == n and band.score == pytest.approx(mean, rel=1e-12, abs=0) if n else band.score is None
        assert (band.std is None) == (std is None) and (std is None or band.std == pytest.approx(std, rel=1e-9))
    assert [(b.label, b.n) for b in ours.by_length] == [(k, v[0]) for k, v in ref["lengths"].items()]
    assert ours.all == pytest.approx(ref["all"], rel=1e-13, abs=0)
    assert ours.in_vocab == pytest.approx(ref["in_vocab"], rel=1e-13, abs=0)
    assert ours.n_pairs == len(ours.pairs) == sum(len(e["outcomes"]) for e in ref["items"].values())


@pytest.mark.parametrize("kwargs", [kw for case in SYNTACTIC_CASES for kw in case], ids=lambda kw: f"seed{kw['seed']}")
def test_syntactic_matches_independent(kwargs, tmp_path):
    gold, submission = make_syntactic(tmp_path, "set", **kwargs)
    ref = independent_syntactic(gold, submission)
    ours = zr.score_files(gold, submission, zr.SYNTACTIC)
    assert [i.key for i in ours.items] == ref["keys"]
    for item in ours.items:
        entry = ref["items"][item.key]
        assert item.score == entry["score"]
        assert (item.correct_text, item.incorrect_text) == (entry["sentence"], entry["non_sentence"])
    assert [(b.label, b.n) for b in ours.by_type] == [(t, v[0]) for t, v in ref["types"].items()]
    for band in ours.by_type:
        assert band.score == pytest.approx(ref["types"][band.label][1], rel=1e-12)
    assert ours.score == pytest.approx(ref["score"], rel=1e-13, abs=0)
    assert len(ours.mismatched_pairs) <= 2 * kwargs.get("mismatched", 0)


# ---------------------------------------------------------------------------------------------------------------
# per-pair detail and options
# ---------------------------------------------------------------------------------------------------------------
def test_pair_records_and_ties(tmp_path):
    gold = tmp_path / "gold.csv"
    gold.write_text("filename,id,voice,frequency,word,phones,length,correct\n"
                    "a1,1,A,3,cat,k a t,3,1\nb1,1,A,,,t a k,3,0\n"
                    "a2,1,B,3,cat,k a t,3,1\nb2,1,B,,,t a k,3,0\n"
                    "a3,2,A,0,zyx,z y x,3,1\nb3,2,A,,,x y z,3,0\n")
    scores = {"a1": -1.0, "b1": -2.0, "a2": -5.0, "b2": -5.0, "a3": -9.0, "b3": -1.0}
    result = zr.score_lexical(zr.read_gold(gold, "lexical"), scores)
    assert [p.outcome for p in result.pairs] == [1.0, 0.5, 0.0]
    record = result.pairs[0].to_record()
    assert record["correct_stem"] == "a1" and record["incorrect_stem"] == "b1" and record["band"] == "1-5"
    assert record["word"] == "k a t" and record["non_word"] == "t a k"  # every non-word unspelled: phones label
    assert [(i.key, i.score) for i in result.items] == [((1,), 0.75), ((2,), 0.0)]
    assert result.all == 0.375 and result.in_vocab == 0.75


def test_allow_missing_keeps_positional_pairing(tmp_path):
    gold, submission = make_syntactic(tmp_path, "s", seed=21, n_pairs=40)
    table = zr.read_gold(gold, "syntactic")
    scores = zr.read_submission(submission, table.stems)
    dropped = table.stems[0]
    partial = {k: v for k, v in scores.items() if k != dropped}
    with pytest.raises(ValueError, match="have no score"):
        zr.score_syntactic(table, partial)
    full = zr.score_syntactic(table, scores)
    part = zr.score_syntactic(table, partial, allow_missing=True)
    assert part.missing_stems == [dropped] and part.n_pairs == full.n_pairs - 1
    kept = {p.position: p for p in part.pairs}
    assert all(kept[p.position] == p for p in full.pairs if p.position in kept)


def test_unequal_syntactic_rows_rejected(tmp_path):
    gold = tmp_path / "gold.csv"
    gold.write_text("filename,id,voice,type,subtype,transcription,correct\n"
                    "a,1,A,t,s,x,1\nb,1,A,t,s,y,0\nc,2,A,t,s,z,1\n")
    with pytest.raises(ValueError, match="positional pairing"):
        zr.score_syntactic(zr.read_gold(gold, "syntactic"), {"a": 1.0, "b": 0.0, "c": 0.0})


# ---------------------------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------------------------
def _submission(tmp_path, text):
    path = tmp_path / "dev.txt"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("text, line, fragment", [
    ("a 1.0\nb\t2.0\n", 2, "one space"),
    ("a 1.0\nb  2.0\n", 2, "one space"),
    ("a 1.0 3\n", 1, "one space"),
    ("a 1.0\n\nb 2.0\n", 2, "one space"),
    ("a x\n", 1, "not a number"),
    ("a 1_0\n", 1, "not a number"),
    ("a nan\n", 1, "not finite"),
    ("a -inf\n", 1, "not finite"),
    ("a 1\nb 2\na 3\n", 3, "duplicate stem 'a' (first on line 1)"),
    ("a 1\nzz 2\n", 2, "unknown stem 'zz'"),
    ("a 1\nb.wav 2\n", 2, "without folder or extension"),
])
def test_submission_errors_name_the_line(tmp_path, text, line, fragment):
    path = _submission(tmp_path, text)
    with pytest.raises(zr.ScoreFileError) as info:
        zr.read_submission(path, expected_stems=["a", "b", "c"])
    assert info.value.line == line and fragment in str(info.value)
    assert str(info.value).startswith(f"{path}:{line}: ")
    assert "\n" not in str(info.value)


def test_submission_missing_stems_listed(tmp_path):
    path = _submission(tmp_path, "s0 1\n")
    with pytest.raises(zr.ScoreFileError, match=r"9 of 10 stems missing: s1, s2, s3, s4, s5, \.\.\."):
        zr.read_submission(path, expected_stems=[f"s{i}" for i in range(10)])


def test_submission_round_trip(tmp_path):
    scores = {"b": -12.345678901234567, "a": 0.1 + 0.2, "c": -0.0, "d": 1e-300}
    path = zr.write_submission(tmp_path / "x" / "dev.txt", scores)
    assert zr.read_submission(path, expected_stems=scores) == scores
    assert list(zr.read_submission(path)) == ["b", "a", "c", "d"]
    with pytest.raises(ValueError):
        zr.write_submission(tmp_path / "bad.txt", {"a": math.nan})


@pytest.mark.parametrize("text, line, fragment", [
    ("filename,id,voice,word,phones,length,correct\n", 1, "lacks column(s) frequency"),
    ("filename,id,voice,frequency,word,phones,length,correct\na,1,A,2,w,p,1,2\n", 2, "'correct' must be 0 or 1"),
    ("filename,id,voice,frequency,word,phones,length,correct\na,1,A,2,w,p,1,1\na,1,B,2,w,p,1,0\n", 3,
     "already listed on line 2"),
    ("filename,id,voice,frequency,word,phones,length,correct\na,1,A,2.5,w,p,1,1\n", 2,
     "'frequency' must be an integer"),
    ("filename,id,voice,frequency,word,phones,length,correct\na,,A,2,w,p,1,1\n", 2, "empty 'id'"),
    ("filename,id,voice,frequency,word,phones,length,correct\na,1,A,,w,p,1,1\n", 2, "word row without 'frequency'"),
    ("filename,id,voice,frequency,word,phones,length,correct\na,1,A,2,w\n", 2, "5 fields, header has 8"),
])
def test_gold_errors_name_the_line(tmp_path, text, line, fragment):
    path = tmp_path / "gold.csv"
    path.write_text(text)
    with pytest.raises(zr.ScoreFileError) as info:
        zr.read_gold(path, "lexical")
    assert info.value.line == line and fragment in str(info.value) and str(info.value).startswith(f"{path}:{line}:")


def test_gold_columns_by_name_and_empty_file(tmp_path):
    path = tmp_path / "gold.csv"
    path.write_text("correct,subtype,transcription,voice,id,type,filename\n1,s,x y,A,7,t,a\n0,s,y x,A,7,t,b\n")
    gold = zr.read_gold(path, "syntactic")
    assert gold.stems == ["a", "b"] and gold.table["id"].tolist() == [7, 7]
    result = zr.score_syntactic(gold, {"a": 0.0, "b": -1.0})
    assert result.score == 1.0 and result.items[0].key == ("t", "s", 7)
    path.write_text("filename,id,voice,type,subtype,transcription,correct\n")
    with pytest.raises(zr.ScoreFileError, match="lists no wav"):
        zr.read_gold(path, "syntactic")
    with pytest.raises(zr.ScoreFileError, match="cannot open"):
        zr.read_gold(tmp_path / "nope.csv", "syntactic")


# ---------------------------------------------------------------------------------------------------------------
# spoken StoryCloze (same pair rule; lives here with the other sLM scorers)
# ---------------------------------------------------------------------------------------------------------------
def test_storycloze_outcomes_and_reduction():
    from most_eval_tasks.slm import storycloze_scoring as sc

    pairs = [sc.ClozePair("0", "0_t", "0_f"), sc.ClozePair("1", "1_t", "1_f"), sc.ClozePair("2", "2_t", "2_f")]
    sums = {"0_t": -100.0, "0_f": -90.0, "1_t": -50.0, "1_f": -60.0, "2_t": -30.0, "2_f": -30.0}
    tokens = {"0_t": 50, "0_f": 30, "1_t": 50, "1_f": 50, "2_t": 10, "2_f": 20}
    assert sc.DEFAULT_REDUCTION == "mean"
    by_sum = sc.score_storycloze(pairs, sums, reduction="sum")
    assert [p.outcome for p in by_sum.pairs] == [0.0, 1.0, 0.5] and by_sum.accuracy == 0.5
    by_mean = sc.score_storycloze(pairs, sums, scores_reduction="sum", n_tokens=tokens)
    assert by_mean.reduction == "mean" and [p.outcome for p in by_mean.pairs] == [1.0, 1.0, 0.0]
    assert by_mean.pairs[0].true_score == -2.0 and by_mean.pairs[0].to_record()["false_stem"] == "0_f"
    with pytest.raises(ValueError, match="token count"):
        sc.score_storycloze(pairs, sums, scores_reduction="sum")  # mean asked, sums given, no counts
    with pytest.raises(ValueError, match="reduction must be"):
        sc.score_storycloze(pairs, sums, reduction="max")
    assert sc.reduce_log_likelihood(-12.0, 4, "mean") == -3.0 and sc.reduce_log_likelihood(-12.0, 4, "sum") == -12.0


def test_storycloze_missing_and_bad_scores():
    from most_eval_tasks.slm import storycloze_scoring as sc

    pairs = [sc.ClozePair("0", "0_t", "0_f"), sc.ClozePair("1", "1_t", "1_f")]
    scores = {"0_t": -1.0, "0_f": -2.0, "1_t": -1.0}
    with pytest.raises(ValueError, match="1 stem"):
        sc.score_storycloze(pairs, scores)
    partial = sc.score_storycloze(pairs, scores, allow_missing=True)
    assert partial.n_pairs == 1 and partial.missing_stems == ["1_f"] and partial.accuracy == 1.0
    with pytest.raises(ValueError, match="non-finite"):
        sc.score_storycloze(pairs, {**scores, "1_f": math.nan})
