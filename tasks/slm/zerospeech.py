"""ZeroSpeech 2021 sLM21 scoring: sWUGGY (lexical) and sBLIMP (syntactic), as the official scorer computes them.

The official implementation is the ``zerospeech-benchmarks`` package (``zerospeech/benchmarks/tasks/lm/lexical.py``,
``syntactic.py`` for the scoring, ``_benchmarks/sLM_21/scores.py`` for the leaderboard numbers; the same code as
``zerospeech/zerospeech2021``). We reproduce its results with our own pandas-3 code;
``tests/test_zerospeech_scoring.py`` checks them digit for digit against the official code run in a pandas<3 venv.
What the official code does:

* **Input.** ``gold.csv`` (one row per wav, read by header name) and a submission ``<stem> <score>`` per line. The
  official validator requires the submitted stems to equal the wav stems, one line each.
* **Pair outcome.** 1 if the correct member scores higher, 0.5 on an exact tie, 0 otherwise.
* **Lexical pairing.** Word rows (``correct == 1``) join non-word rows (``correct == 0``) on ``(voice, id)``; a row
  without a partner is dropped (we list it in ``unpaired_stems``). Per ``id``: mean outcome over its pairs (voices);
  labels (word, non-word, frequency, length) come from the id's first pair in gold order. If *every* non-word has an
  empty ``word``, the ``phones`` column labels words and non-words instead.
* **Frequency bands.** Per-id frequency cut into [0,1) [1,5) [5,20) [20,100) [100,inf) labelled ``oov``, ``1-5``,
  ``6-20``, ``21-100``, ``>100``; per band: count, mean, sample std of the per-id scores. Same per word length.
  (Word rows must carry frequency and length: the official code crashes without; non-word rows need neither.)
* **Syntactic pairing is positional**: the k-th ``correct == 1`` row in gold order pairs with the k-th
  ``correct == 0`` row, whatever their ids (we flag pairs whose id/voice/type/subtype differ in
  ``mismatched_pairs``). Per ``(type, subtype, id)``: mean outcome over its pairs; labels from its first pair.
  Per type: count, mean, std of the item scores.
* **Headline numbers and the 4-decimal rounding.** The official scorer writes its per-item and per-band tables to CSV
  with ``float_format='%.4f'`` and the leaderboard reads them back, so:

  - lexical ``all``      = plain mean of the per-id scores *rounded to 4 decimals*, ids in sorted order;
  - lexical ``in_vocab`` = mean of the band scores (each *rounded to 4 decimals*) of the four in-vocabulary bands,
    weighted by the band counts (exact integers, not rounded);
  - syntactic ``score``  = plain mean of the per-(type, subtype, id) scores *rounded to 4 decimals* — not a
    macro-average over types.

  Our ``all`` / ``in_vocab`` / ``score`` are those leaderboard values, computed the same way (pandas ``Series.mean``
  over the sorted items, ``np.average`` over the bands in band order) so they agree to the last bit; ``*_exact`` are
  the same means without the rounding. The ZeroSpeech leaderboard lists both lexical numbers and papers rarely say
  which one they quote: report both. (slamkit/TWIST-style "sWUGGY" is a third variant: plain accuracy over the pairs
  of a pre-selected in-vocabulary file subset, with no per-id averaging over voices.)

Deliberate differences from the official code (it would crash or return NaN there; on well-formed data, none apply):

* ``in_vocab`` skips an in-vocabulary band with no item; the official ``np.average`` returns NaN then.
* A gold file with different numbers of correct and incorrect syntactic rows is an error here (the official code
  silently pairs rows with nothing and scores them 0). A missing score is an error unless ``allow_missing=True``,
  which leaves out the pairs that need it *after* pairing (positional pairing never shifts).
* ``std`` is ``None`` where pandas gives NaN (fewer than two items), and a band's ``score`` is ``None`` when empty.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from most_eval.data.files import open_regular, text_field
from most_eval.core.errors import DatasetError
from most_eval.core.errors import MostEvalError
from most_eval_tasks.slm.zerospeech_results import (Breakdown, Item, LexicalPair, LexicalResult, SyntacticPair,
                                                    SyntacticResult)

LEXICAL = "lexical"
SYNTACTIC = "syntactic"
KINDS = (LEXICAL, SYNTACTIC)

#: gold.csv columns by kind (read by header name; extra columns are kept, order is free)
GOLD_COLUMNS = {
    LEXICAL: ("filename", "id", "voice", "frequency", "word", "phones", "length", "correct"),
    SYNTACTIC: ("filename", "id", "voice", "type", "subtype", "transcription", "correct"),
}
#: columns that may be empty (non-words need no spelling, frequency or length; a real word needs the last two)
_OPTIONAL = {"word", "phones", "frequency", "length", "transcription"}

#: frequency bands: left-closed bins over the LibriSpeech word count, as in the official scorer
FREQUENCY_BINS = (0, 1, 5, 20, 100, math.inf)
FREQUENCY_LABELS = ("oov", "1-5", "6-20", "21-100", ">100")
OOV = "oov"

LEADERBOARD_DECIMALS = 4  # the official CSVs are written with float_format='%.4f'
_MAX_LISTED = 5  # how many stems an error message lists


class ScoreFileError(MostEvalError, ValueError):
    """A gold or submission file that cannot be used: ``<path>:<line>: <reason>`` (line omitted when None)."""

    def __init__(self, path, line: int | str | None, reason: str):  # line: a file line, or "row <n>" of a source
        self.path, self.line, self.reason = Path(path), line, reason
        super().__init__(f"{self.path}:{line}: {reason}" if line is not None else f"{self.path}: {reason}")


# ---------------------------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Gold:
    """A parsed gold.csv: one row per wav in gold order (the order matters for syntactic pairing)."""

    kind: str  # "lexical" or "syntactic"
    path: Path
    table: pd.DataFrame  # columns by header name; id int when every id is an integer, frequency nullable Int64

    @property
    def stems(self) -> list[str]:
        return self.table["filename"].tolist()


_INT = re.compile(r"[+-]?\d+")


def _open_text(path: Path, what: str) -> io.TextIOWrapper:
    """``path`` as UTF-8 text (BOM skipped), opened only if it is a regular file: a FIFO never blocks the run."""
    try:
        return io.TextIOWrapper(open_regular(path), encoding="utf-8-sig", newline="")
    except DatasetError as error:
        raise ScoreFileError(path, None, f"cannot open {what}: {str(error).removeprefix(f'{path}: ')}") from None


def read_gold(path, kind: str) -> Gold:
    """Read a ZeroSpeech 2021 lexical or syntactic ``gold.csv`` by header names; :class:`ScoreFileError` if unusable."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    path = Path(path)
    handle = _open_text(path, "gold file")
    try:
        return _parse_gold(handle, path, kind)
    except UnicodeDecodeError as error:
        raise ScoreFileError(path, None, f"not valid UTF-8 (byte 0x{error.object[error.start]:02x})") from None
    finally:
        handle.close()


def _parse_gold(handle, path: Path, kind: str) -> Gold:
    """The body of :func:`read_gold` over an open text handle."""
    reader = csv.reader(handle)
    header = next(reader, None)
    if header is None:
        raise ScoreFileError(path, None, "empty gold file")
    header = [name.strip() for name in header]
    missing = [c for c in GOLD_COLUMNS[kind] if c not in header]
    if missing:
        raise ScoreFileError(path, 1, f"{kind} gold header lacks column(s) {', '.join(missing)} "
                                      f"(has: {', '.join(header)})")
    if len(set(header)) != len(header):
        raise ScoreFileError(path, 1, "duplicate column names in header")

    def rows():
        for fields in reader:
            line = reader.line_num
            if not fields or fields == [""]:
                continue  # blank line
            if len(fields) != len(header):
                raise ScoreFileError(path, line, f"{len(fields)} fields, header has {len(header)}")
            yield line, dict(zip(header, fields))

    return _gold_table(rows(), header, path, kind)


def gold_from_rows(rows: Iterable[Mapping[str, Any]], kind: str, path) -> Gold:
    """A gold table from rows already split into columns (the cells of a Hugging Face source, ``--task-args
    source=PATH``), validated as :func:`read_gold` validates a file. A cell may be text or a number (an integral
    float as an integer), ``correct`` also a bool (true = 1); null (or NaN) is an empty field where gold.csv may
    leave one empty (word, phones, frequency, length, transcription) and an error elsewhere; a ``filename`` ending
    in ``.wav`` loses it. Errors name
    ``<path>:row <n>`` (1-based, the source's row numbering)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    path = Path(path)
    header = list(GOLD_COLUMNS[kind])

    def text(value, column: str, where: str) -> str:
        if value is None or (isinstance(value, float) and value != value):  # null, or NaN as pandas writes it
            if column in _OPTIONAL:
                return ""
            raise ScoreFileError(path, where, f"{column!r} is null")
        if isinstance(value, bool) and column == "correct":
            return "1" if value else "0"
        try:
            return text_field(value, column)
        except ValueError as exc:
            raise ScoreFileError(path, where, str(exc)) from None

    def converted():
        for number, cells in enumerate(rows, start=1):
            where = f"row {number}"
            row = {c: text(cells.get(c), c, where) for c in header}
            row["filename"] = row["filename"].removesuffix(".wav")
            yield where, row

    return _gold_table(converted(), header, path, kind)


def _gold_table(rows: Iterable[tuple[int | str, dict[str, str]]], header: list[str], path: Path, kind: str) -> Gold:
    """Validate ``(line, {column: text})`` rows and build the :class:`Gold` table (shared by the file and row forms)."""
    table_rows, seen = [], {}
    for line, row in rows:
        for column in GOLD_COLUMNS[kind]:
            if column not in _OPTIONAL and not row[column].strip():
                raise ScoreFileError(path, line, f"empty {column!r}")
        if row["correct"].strip() not in ("0", "1"):
            raise ScoreFileError(path, line, f"'correct' must be 0 or 1, got {row['correct']!r}")
        stem = row["filename"]
        if stem in seen:
            raise ScoreFileError(path, line, f"filename {stem!r} already listed on {_line_name(seen[stem])}")
        seen[stem] = line
        for column in ("frequency", "length"):
            value = row.get(column, "").strip() if column in GOLD_COLUMNS[kind] else ""
            if value and not _INT.fullmatch(value):
                raise ScoreFileError(path, line, f"{column!r} must be an integer, got {value!r}")
            if kind == LEXICAL and not value and row["correct"].strip() == "1":
                # the official scorer crashes on a word without frequency; a non-word's is never used
                raise ScoreFileError(path, line, f"word row without {column!r}")
        table_rows.append(row)
    if not table_rows:
        raise ScoreFileError(path, None, "gold file lists no wav")
    table = pd.DataFrame(table_rows, columns=header)
    table["correct"] = table["correct"].str.strip().astype("int64")
    ids = table["id"].str.strip()
    # the official reader lets pandas infer the id type: integers sort numerically, anything else as text
    table["id"] = ids.astype("int64") if ids.str.fullmatch(_INT.pattern).all() else ids
    table["voice"] = table["voice"].astype(str)
    for column in ("frequency", "length"):
        if column in GOLD_COLUMNS[kind]:
            values = table[column].str.strip()
            table[column] = pd.array([int(v) if v else pd.NA for v in values], dtype="Int64")
    for column in ("word", "phones", "transcription"):
        if column in GOLD_COLUMNS[kind]:
            table[column] = table[column].where(table[column] != "", None).astype(object)
    return Gold(kind=kind, path=path, table=table)


def _line_name(line: int | str) -> str:
    """``line 3`` for a file line, ``row 3`` as a row form already names itself."""
    return f"line {line}" if isinstance(line, int) else str(line)


def read_submission(path, expected_stems: Iterable[str] | None = None) -> dict[str, float]:
    """Read ``<stem> <float>`` lines (one space) into ``{stem: score}`` in file order.

    Raises :class:`ScoreFileError` naming the line for a malformed line, a NaN/infinite score, a duplicate or
    (when ``expected_stems`` is given) an unknown stem, and naming a few missing stems when some expected ones are
    absent.
    """
    path = Path(path)
    expected = None if expected_stems is None else set(expected_stems)
    scores: dict[str, float] = {}
    lines: dict[str, int] = {}
    handle = _open_text(path, "submission")
    with handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.strip()
            fields = line.split(" ")
            if len(fields) != 2 or not fields[0] or not fields[1]:
                raise ScoreFileError(path, number, f'expected "<stem> <score>" separated by one space, got {line!r}')
            stem, text = fields
            try:
                if "_" in text:  # float() accepts "1_0"; the official pandas reader does not
                    raise ValueError
                score = float(text)
            except ValueError:
                raise ScoreFileError(path, number, f"score {text!r} is not a number") from None
            if not math.isfinite(score):
                raise ScoreFileError(path, number, f"score {text!r} is not finite")
            if stem in scores:
                raise ScoreFileError(path, number, f"duplicate stem {stem!r} (first on line {lines[stem]})")
            if expected is not None and stem not in expected:
                hint = " (give the wav name without folder or extension)" if Path(stem).stem in expected else ""
                raise ScoreFileError(path, number, f"unknown stem {stem!r}{hint}")
            scores[stem] = score
            lines[stem] = number
    if expected is not None and len(scores) != len(expected):
        absent = sorted(expected.difference(scores))
        shown = ", ".join(absent[:_MAX_LISTED]) + (", ..." if len(absent) > _MAX_LISTED else "")
        raise ScoreFileError(path, None, f"{len(absent)} of {len(expected)} stems missing: {shown}")
    return scores


def submission_text(scores: Mapping[str, float]) -> str:
    """A submission file's text: ``<stem> <score>`` lines (shortest round-trip float text), in the mapping's order."""
    lines = []
    for stem, score in scores.items():
        if " " in stem or not stem:
            raise ValueError(f"stem {stem!r} cannot be written (empty or contains a space)")
        value = float(score)
        if not math.isfinite(value):
            raise ValueError(f"score of {stem!r} is not finite: {score!r}")
        lines.append(f"{stem} {value!r}\n")
    return "".join(lines)


def write_submission(path, scores: Mapping[str, float]) -> Path:
    """Write :func:`submission_text` of ``scores`` to ``path`` (folders created)."""
    path = Path(path)
    text = submission_text(scores)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------------------------
def round_like_official(values) -> np.ndarray:
    """What ``to_csv(float_format='%.4f')`` then ``read_csv`` gives back (NaN stays NaN)."""
    return np.array([float(f"{v:.{LEADERBOARD_DECIMALS}f}") if v == v else math.nan for v in values], dtype=float)


def outcomes(correct: np.ndarray, incorrect: np.ndarray) -> np.ndarray:
    """Pair outcomes: 1.0 where correct > incorrect, 0.5 where equal, 0.0 otherwise."""
    correct, incorrect = np.asarray(correct, dtype=float), np.asarray(incorrect, dtype=float)
    return np.where(correct > incorrect, 1.0, np.where(correct == incorrect, 0.5, 0.0))


def _table(gold) -> pd.DataFrame:
    return gold.table if isinstance(gold, Gold) else gold


def _attach_scores(table: pd.DataFrame, scores: Mapping[str, float],
                   allow_missing: bool) -> tuple[pd.DataFrame, list[str]]:
    stems = table["filename"].tolist()
    values = np.array([scores.get(s, math.nan) for s in stems], dtype=float)
    absent = [s for s, v in zip(stems, values) if not (v == v)]
    if absent and not allow_missing:
        shown = ", ".join(absent[:_MAX_LISTED]) + (", ..." if len(absent) > _MAX_LISTED else "")
        raise ValueError(f"{len(absent)} of {len(stems)} gold stems have no score: {shown}")
    out = table.copy()
    out["score"] = values
    return out, absent


def _native(value):
    """numpy / pandas scalars -> plain Python (NA -> None)."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    return value.item() if hasattr(value, "item") else value


def _columns(frame: pd.DataFrame, names: list[str]) -> list[list]:
    """Columns as lists of plain Python values (NA -> None), for building result records quickly."""
    out = []
    for name in names:
        column = frame[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            column = column.astype(object)
        values = column.astype(object).tolist()
        if column.hasnans:
            values = [None if v is None or v is pd.NA or v != v else v for v in values]
        out.append(values)
    return out


def _breakdown(labels: pd.Series, scores: pd.Series, order=None) -> list[Breakdown]:
    """Count / mean / sample std of ``scores`` grouped by ``labels`` (NA labels belong to no group)."""
    stats = scores.groupby(labels, sort=True, observed=False).agg(["count", "mean", "std"])
    if order is not None:
        stats = stats.reindex(order)
    out = []
    for label, row in stats.iterrows():
        n = int(row["count"]) if row["count"] == row["count"] else 0
        mean = None if n == 0 else float(row["mean"])
        std = None if n < 2 else float(row["std"])
        out.append(Breakdown(label=_native(label), n=n, score=mean, std=std,
                             score_rounded=None if mean is None else float(round_like_official([mean])[0])))
    return out


def _band_labels(frequency: pd.Series) -> pd.Series:
    return pd.cut(frequency.astype("Float64").astype(float), list(FREQUENCY_BINS), right=False,
                  labels=list(FREQUENCY_LABELS))


def score_lexical(gold: Gold | pd.DataFrame, scores: Mapping[str, float], *,
                  allow_missing: bool = False) -> LexicalResult:
    """sWUGGY scores of a submission, as the official scorer and leaderboard compute them (see module docstring)."""
    table, missing = _attach_scores(_table(gold), scores, allow_missing)
    nonword = table["correct"] == 0
    label = table["phones"] if table.loc[nonword, "word"].isna().all() else table["word"]
    table = table.assign(label=label)
    keep = ["filename", "id", "voice", "frequency", "length", "label", "score"]
    words = table.loc[~nonword, keep]
    nonwords = table.loc[nonword, ["filename", "id", "voice", "label", "score"]]
    # inner join on (voice, id): pandas keeps the left (word) rows' order, as the official merge does
    pairs = words.merge(nonwords, on=["voice", "id"], how="inner", suffixes=("_w", "_nw"))
    paired = set(pairs["filename_w"]).union(pairs["filename_nw"])
    unpaired = [s for s in table["filename"] if s not in paired]
    pairs = pairs[pairs["score_w"].notna() & pairs["score_nw"].notna()].reset_index(drop=True)
    pairs["outcome"] = outcomes(pairs["score_w"].to_numpy(), pairs["score_nw"].to_numpy())
    return _lexical_result(pairs, unpaired, missing)


def lexical_from_pairs(pairs: Iterable[Mapping[str, Any]]) -> LexicalResult:
    """The :func:`score_lexical` numbers from its scored pairs alone (:meth:`LexicalPair.to_record` dicts, in the
    result's order; ``id`` typed as the gold types it), bit for bit: what a task's ``aggregate`` computes from its
    items. ``unpaired_stems`` and ``missing_stems`` are empty (the gold is not read)."""
    frame = _pair_frame(pairs, {"id": "id", "voice": "voice", "filename_w": "correct_stem",
                                "filename_nw": "incorrect_stem", "score_w": "correct_score",
                                "score_nw": "incorrect_score", "outcome": "outcome", "label_w": "word",
                                "label_nw": "non_word", "frequency": "frequency", "length": "length"},
                        texts=("label_w", "label_nw"), integers=("frequency", "length"))
    return _lexical_result(frame, [], [])


def _pair_frame(pairs: Iterable[Mapping[str, Any]], columns: Mapping[str, str], texts=(), integers=()) -> pd.DataFrame:
    """A pairs table under the scorers' column names from pair records (``columns``: table column -> record field),
    with the dtypes the scorers give it: ``texts`` as objects (None kept), ``integers`` as nullable Int64."""
    records = list(pairs)
    frame = pd.DataFrame({column: [r[name] for r in records] for column, name in columns.items()})
    for column in texts:
        frame[column] = pd.Series([r[columns[column]] for r in records], dtype=object)
    for column in integers:
        frame[column] = pd.array([r[columns[column]] for r in records], dtype="Int64")
    return frame


def _lexical_result(pairs: pd.DataFrame, unpaired: list[str], missing: list[str]) -> LexicalResult:
    """Per-id averaging, frequency and length bands and the leaderboard numbers over the scored (word, non-word)
    pairs (columns id, voice, filename_w/_nw, score_w/_nw, outcome, label_w/_nw, frequency, length)."""
    if pairs.empty:
        raise ValueError("no scorable (word, non-word) pair")
    pairs = pairs.assign(band=_band_labels(pairs["frequency"]))

    grouped = pairs.groupby("id", sort=True)["outcome"]
    per_id = pd.DataFrame({"score": grouped.mean(), "n_pairs": grouped.size()})
    first = pairs.drop_duplicates("id", keep="first").set_index("id")
    per_id = per_id.join(first[["label_w", "label_nw", "frequency", "length", "band"]])
    per_id["rounded"] = round_like_official(per_id["score"].to_numpy())

    id_bands = _band_labels(per_id["frequency"])
    by_frequency = _breakdown(id_bands, per_id["score"], order=list(FREQUENCY_LABELS))
    by_length = _breakdown(per_id["length"].astype("Float64").astype(float), per_id["score"])
    by_length = [Breakdown(int(b.label), b.n, b.score, b.std, b.score_rounded) for b in by_length]

    in_bands = [b for b in by_frequency if b.label != OOV and b.n > 0]
    in_vocab = (float(np.average([b.score_rounded for b in in_bands], weights=[b.n for b in in_bands]))
                if in_bands else math.nan)
    in_vocab_ids = (id_bands.notna() & (id_bands != OOV)).to_numpy(bool)
    in_vocab_exact = float(per_id.loc[in_vocab_ids, "score"].mean()) if in_vocab_ids.any() else math.nan

    c = _columns(per_id.reset_index(), ["id", "label_w", "label_nw", "n_pairs", "score", "rounded", "frequency",
                                        "band", "length"])
    items = [Item((i,), w, nw, n, score, rounded, frequency, band, length)
             for i, w, nw, n, score, rounded, frequency, band, length in zip(*c)]
    c = _columns(pairs, ["id", "voice", "filename_w", "filename_nw", "score_w", "score_nw", "outcome", "label_w",
                         "label_nw", "frequency", "band", "length"])
    pair_list = [LexicalPair(*fields) for fields in zip(*c)]
    return LexicalResult(
        all=float(pd.Series(per_id["rounded"].to_numpy()).mean()),
        in_vocab=in_vocab,
        all_exact=float(per_id["score"].mean()),
        in_vocab_exact=in_vocab_exact,
        n_items=len(per_id), n_pairs=len(pairs), by_frequency=by_frequency, by_length=by_length,
        items=items, pairs=pair_list, unpaired_stems=unpaired, missing_stems=missing)


def score_syntactic(gold: Gold | pd.DataFrame, scores: Mapping[str, float], *,
                    allow_missing: bool = False) -> SyntacticResult:
    """sBLIMP scores of a submission, as the official scorer and leaderboard compute them (see module docstring)."""
    table, missing = _attach_scores(_table(gold), scores, allow_missing)
    cols = ["filename", "id", "voice", "type", "subtype", "transcription", "score"]
    good = table.loc[table["correct"] == 1, cols].reset_index(drop=True)
    bad = table.loc[table["correct"] == 0, cols].reset_index(drop=True)
    if len(good) != len(bad):
        raise ValueError(f"syntactic gold has {len(good)} correct and {len(bad)} incorrect rows: "
                         "positional pairing needs as many of each")
    pairs = good.add_suffix("_s").join(bad.add_suffix("_ns"))  # k-th correct with k-th incorrect
    pairs["position"] = np.arange(len(pairs))
    same = np.ones(len(pairs), dtype=bool)
    for column in ("id", "voice", "type", "subtype"):
        same &= (pairs[f"{column}_s"].astype(str) == pairs[f"{column}_ns"].astype(str)).to_numpy()
    pairs["consistent"] = same
    mismatched = pairs.loc[~same, "position"].tolist()
    pairs = pairs[pairs["score_s"].notna() & pairs["score_ns"].notna()].reset_index(drop=True)
    pairs["outcome"] = outcomes(pairs["score_s"].to_numpy(), pairs["score_ns"].to_numpy())
    return _syntactic_result(pairs, mismatched, missing)


def syntactic_from_pairs(pairs: Iterable[Mapping[str, Any]]) -> SyntacticResult:
    """The :func:`score_syntactic` numbers from its scored pairs alone (:meth:`SyntacticPair.to_record` dicts, in
    positional order; ``id`` typed as the gold types it), bit for bit: what a task's ``aggregate`` computes from its
    items. ``mismatched_pairs`` lists the inconsistent pairs among those given; ``missing_stems`` is empty."""
    frame = _pair_frame(pairs, {"position": "position", "id_s": "id", "voice_s": "voice", "type_s": "type",
                                "subtype_s": "subtype", "filename_s": "correct_stem", "filename_ns": "incorrect_stem",
                                "score_s": "correct_score", "score_ns": "incorrect_score", "outcome": "outcome",
                                "transcription_s": "sentence", "transcription_ns": "non_sentence",
                                "consistent": "consistent"},
                        texts=("transcription_s", "transcription_ns"))
    mismatched = [p for p, same in zip(frame["position"].tolist(), frame["consistent"].tolist()) if not same]
    return _syntactic_result(frame, mismatched, [])


def _syntactic_result(pairs: pd.DataFrame, mismatched: list[int], missing: list[str]) -> SyntacticResult:
    """Per-(type, subtype, id) averaging, per-type breakdown and the leaderboard number over the scored pairs
    (columns position, id_s, voice_s, type_s, subtype_s, filename_s/_ns, score_s/_ns, outcome, transcription_s/_ns,
    consistent)."""
    if pairs.empty:
        raise ValueError("no scorable (correct, incorrect) pair")

    keys = ["type_s", "subtype_s", "id_s"]
    grouped = pairs.groupby(keys, sort=True)["outcome"]
    per_item = pd.DataFrame({"score": grouped.mean(), "n_pairs": grouped.size()})
    first = pairs.drop_duplicates(keys, keep="first").set_index(keys)
    per_item = per_item.join(first[["transcription_s", "transcription_ns"]])
    per_item["rounded"] = round_like_official(per_item["score"].to_numpy())
    type_labels = pd.Series(per_item.index.get_level_values(0), index=per_item.index)
    by_type = _breakdown(type_labels, per_item["score"])

    c = _columns(per_item.reset_index(), ["type_s", "subtype_s", "id_s", "transcription_s", "transcription_ns",
                                          "n_pairs", "score", "rounded"])
    items = [Item((t, st, i), sentence, non_sentence, n, score, rounded)
             for t, st, i, sentence, non_sentence, n, score, rounded in zip(*c)]
    c = _columns(pairs, ["position", "id_s", "voice_s", "type_s", "subtype_s", "filename_s", "filename_ns", "score_s",
                         "score_ns", "outcome", "transcription_s", "transcription_ns", "consistent"])
    pair_list = [SyntacticPair(*fields) for fields in zip(*c)]
    return SyntacticResult(
        score=float(pd.Series(per_item["rounded"].to_numpy()).mean()),
        score_exact=float(per_item["score"].mean()),
        n_items=len(per_item), n_pairs=len(pairs), by_type=by_type, items=items, pairs=pair_list,
        mismatched_pairs=mismatched, missing_stems=missing)


def score_files(gold_path, submission_path, kind: str) -> LexicalResult | SyntacticResult:
    """Read and validate a gold.csv and its submission file (stems must match exactly), then score them."""
    gold = read_gold(gold_path, kind)
    scores = read_submission(submission_path, expected_stems=gold.stems)
    return score_lexical(gold, scores) if kind == LEXICAL else score_syntactic(gold, scores)
