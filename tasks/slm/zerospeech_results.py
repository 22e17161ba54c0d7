"""What the ZeroSpeech 2021 sLM21 scorer returns: one record per scored pair (lexical: a word and its non-word in one
voice; syntactic: a grammatical and an ungrammatical sentence), the averaged items, the breakdowns (frequency bands,
syntactic types) and the headline numbers, as the official ``zerospeech-benchmarks`` scorer computes them
(:mod:`most_eval_tasks.slm.zerospeech` does the scoring)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class LexicalPair:
    """One (word, non-word) pair of one voice."""

    id: int | str
    voice: str
    correct_stem: str  # the real word's wav
    incorrect_stem: str  # the non-word's wav
    correct_score: float
    incorrect_score: float
    outcome: float  # 1.0 correct scored higher, 0.5 tie, 0.0 otherwise
    word: str | None
    non_word: str | None
    frequency: int | None
    band: str | None  # frequency band label, None without frequency
    length: int | None

    def to_record(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SyntacticPair:
    """One (grammatical, ungrammatical) pair: the k-th correct and k-th incorrect gold rows."""

    position: int  # k, 0-based
    id: int | str
    voice: str
    type: str
    subtype: str
    correct_stem: str
    incorrect_stem: str
    correct_score: float
    incorrect_score: float
    outcome: float
    sentence: str | None
    non_sentence: str | None
    consistent: bool  # the two rows agree on id, voice, type and subtype

    def to_record(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Item:
    """An averaged item: a lexical ``id`` or a syntactic ``(type, subtype, id)``; labels from its first pair."""

    key: tuple  # (id,) or (type, subtype, id)
    correct_text: str | None  # word / sentence
    incorrect_text: str | None  # non-word / ungrammatical sentence
    n_pairs: int  # pairs averaged (voices)
    score: float  # mean outcome
    score_rounded: float  # as the official by_pair CSV holds it (4 decimals)
    frequency: int | None = None  # lexical only
    band: str | None = None  # lexical only
    length: int | None = None  # lexical only


@dataclass(frozen=True)
class Breakdown:
    """Items of one group (frequency band, word length, syntactic type): count, mean and sample std of item scores."""

    label: str | int
    n: int
    score: float | None  # None for an empty group
    std: float | None  # None with fewer than two items
    score_rounded: float | None  # as the official CSV holds it


@dataclass(frozen=True)
class LexicalResult:
    all: float  # leaderboard "lexical all": mean of 4-decimal per-id scores
    in_vocab: float  # leaderboard "lexical in-vocab": count-weighted mean of 4-decimal band scores, oov excluded
    all_exact: float  # same means without rounding
    in_vocab_exact: float
    n_items: int
    n_pairs: int
    by_frequency: list[Breakdown]
    by_length: list[Breakdown]
    items: list[Item]  # sorted by id, as the official by_pair table
    pairs: list[LexicalPair]  # gold order of the word rows
    unpaired_stems: list[str]  # gold rows with no partner on (voice, id): not scored (as officially)
    missing_stems: list[str]  # gold stems without a score (allow_missing=True only)

    def summary(self) -> dict:
        return {"all": self.all, "in_vocab": self.in_vocab, "all_exact": self.all_exact,
                "in_vocab_exact": self.in_vocab_exact, "n_items": self.n_items, "n_pairs": self.n_pairs,
                "by_frequency": [asdict(b) for b in self.by_frequency],
                "by_length": [asdict(b) for b in self.by_length],
                "unpaired": len(self.unpaired_stems), "missing": len(self.missing_stems)}


@dataclass(frozen=True)
class SyntacticResult:
    score: float  # leaderboard "syntactic": mean of 4-decimal per-(type, subtype, id) scores
    score_exact: float
    n_items: int
    n_pairs: int
    by_type: list[Breakdown]
    items: list[Item]  # sorted by (type, subtype, id)
    pairs: list[SyntacticPair]  # positional order
    mismatched_pairs: list[int]  # positions whose two rows disagree on id/voice/type/subtype
    missing_stems: list[str]

    def summary(self) -> dict:
        return {"score": self.score, "score_exact": self.score_exact, "n_items": self.n_items,
                "n_pairs": self.n_pairs, "by_type": [asdict(b) for b in self.by_type],
                "mismatched": len(self.mismatched_pairs), "missing": len(self.missing_stems)}
