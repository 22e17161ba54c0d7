"""The MoST paper's tables (one registry: their columns, how runs fill them, their ``--tasks`` groups) and the
reference judges their columns were (or are conventionally) scored with.

``--tasks paper`` (or ``paper-asr-tts``, ``paper-spoken-lm``, ``paper-spoken-qa``) selects exactly the tasks behind
each table's columns and implies ``--judge paper``: every task that transcribes generated speech gets its own
reference judge (a task names which one in ``Task.reference_judge``), loaded from a local models folder
(``--judge-args models=DIR`` or ``$MOST_EVAL_MODELS``), checked before any model work.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

MODELS_ENV = "MOST_EVAL_MODELS"


@dataclass(frozen=True)
class PaperTable:
    """One table of the MoST paper and how runs fill it: its file, row keys, metric columns, metric and direction,
    and the ``--tasks`` group of the tasks behind its columns."""

    key: str  # output file stem, HTML section id
    title: str
    paper_csv: str  # file under data/paper/; its stem is the table a task's LeaderboardSlot names
    source: str  # value of the `source` column for paper rows
    keys: tuple[str, ...]  # row identity columns, paper names
    columns: tuple[str, ...]  # metric columns, paper names
    metric: str  # results.json metric that fills the columns
    lower_is_better: bool
    unit: str
    task_prefixes: tuple[str, ...]  # run tasks listed in this table's details table when they name no cell
    group: str  # the ``--tasks`` group of the tasks whose LeaderboardSlot names this table

    @property
    def table(self) -> str:
        """The paper table's name as tasks declare it (``asr_tts_wer``)."""
        return Path(self.paper_csv).stem


#: the MoST paper's three results tables (ASR/TTS WER, spoken LM accuracy, spoken QA accuracy)
PAPER_TABLES: tuple[PaperTable, ...] = (
    PaperTable(
        "asr_tts", "ASR and TTS word error rate", "asr_tts_wer.csv", "MoST paper (asr_tts_wer)",
        ("model", "task"), ("librispeech_clean", "librispeech_other", "voxpopuli", "common_voice"),
        "wer", True, "WER %", ("asr", "tts"), "paper-asr-tts",
    ),
    PaperTable(
        "spoken_lm", "Spoken language modelling accuracy", "audio_lm_accuracy.csv", "MoST paper (audio_lm_accuracy)",
        ("model",), ("swuggy", "sblimp", "stopic_storycloze", "sstorycloze", "average"),
        "accuracy", False, "accuracy %", ("slm",), "paper-spoken-lm",
    ),
    PaperTable(
        "spoken_qa", "Spoken question answering accuracy", "spoken_qa_accuracy.csv", "MoST paper (spoken_qa_accuracy)",
        ("model",), ("llama_questions_s2t", "llama_questions_s2s", "triviaqa_s2t", "triviaqa_s2s",
                     "webquestions_s2t", "webquestions_s2s"),
        "accuracy", False, "accuracy %", ("sqa",), "paper-spoken-qa",
    ),
)
PAPER_TABLE_BY_NAME = {t.table: t for t in PAPER_TABLES}

# spoken_lm "average" = plain mean of these four, as in the paper (e.g. MoST: (75.28+63.42+83.64+65.43)/4 = 71.94).
SLM_AVERAGE_OF = ("swuggy", "sblimp", "stopic_storycloze", "sstorycloze")

#: each paper table (its file stem, ``leaderboards/data/paper/<table>.csv``) -> its ``--tasks`` group; the tasks in a
#: group are the ones whose ``Task.leaderboard`` slot names that table (:func:`most_eval.registry.paper_groups`), so a
#: task that fills a column joins its group by declaring the slot, and no list here can drift from the tasks
PAPER_TABLE_GROUPS: dict[str, str] = {t.table: t.group for t in PAPER_TABLES}
ALL_PAPER_TABLES = "paper"  # the group of every table
PAPER_GROUP_NAMES: tuple[str, ...] = (*PAPER_TABLE_GROUPS.values(), ALL_PAPER_TABLES)


@dataclass(frozen=True)
class ReferenceJudge:
    """A judge ASR a protocol names: the adapter that runs it and the folder name its weights are published under."""

    adapter: str  # registry name, e.g. "hf-ctc"
    folder: str  # e.g. "hubert-large-ls960-ft" (also the folder name looked for under the models folder)
    what: str  # words for messages
    basis: str  # "paper" (the MoST release names it), "official scorer", or "convention" (peers use it)
    hub_id: str  # where to download it, for the message
    #: the generation settings its protocol runs it with, as the adapter's ``--judge-args`` name them: part of the
    #: judge's identity, checked beside the folder name
    args: tuple[tuple[str, object], ...] = ()

    def describe(self) -> str:
        """Role in words, e.g. ``the paper's judge hubert-large-ls960-ft``."""
        return {"paper": "paper's judge", "official scorer": "official scorer's judge"}.get(
            self.basis, "conventional judge (UltraEval-Audio)")


#: Seed-TTS-eval's ``run_wer.py`` loads Whisper-large-v3 in float32 and calls ``generate`` with English forced and
#: no other argument: greedy (one beam), the generation config's length limit (448 tokens, 444 after the prompt)
WHISPER_GREEDY_EN = (("dtype", "float32"), ("language", "en"), ("num_beams", 1))

REFERENCE_JUDGES: dict[str, ReferenceJudge] = {
    "hubert-large-ls960-ft": ReferenceJudge(
        "hf-ctc", "hubert-large-ls960-ft", "HuBERT-Large CTC fine-tuned on LibriSpeech 960 h (MoST release's TTS judge)",
        "paper", "facebook/hubert-large-ls960-ft", (("dtype", "float32"),)),
    "whisper-large-v3": ReferenceJudge(
        "hf-whisper", "whisper-large-v3", "Whisper-large-v3 (Seed-TTS-eval's judge)", "official scorer",
        "openai/whisper-large-v3", WHISPER_GREEDY_EN),
    "whisper-large-v3-convention": ReferenceJudge(
        "hf-whisper", "whisper-large-v3", "Whisper-large-v3 (UltraEval-Audio's speech-to-text step; the MoST release "
        "names no S->S QA judge)", "convention", "openai/whisper-large-v3", WHISPER_GREEDY_EN),
}


def models_folder(judge_args: str | None) -> Path | None:
    """The local models folder of ``--judge paper``: ``models=DIR`` in the judge args, else ``$MOST_EVAL_MODELS``."""
    for part in (judge_args or "").split(","):
        key, _, value = part.partition("=")
        if key.strip() == "models" and value.strip():
            return Path(value.strip()).expanduser()
    env = os.environ.get(MODELS_ENV)
    return Path(env).expanduser() if env else None


def judge_folder(judge: ReferenceJudge, models: Path | None) -> Path:
    """The folder a reference judge must be in; ValueError (one line, naming the folder and the download) if absent."""
    if models is None:
        raise ValueError(f"--judge paper needs a local models folder holding {judge.folder}/ ({judge.what}): pass "
                         f"--judge-args models=DIR or set ${MODELS_ENV}")
    folder = models / judge.folder
    if not (folder / "config.json").is_file():
        raise ValueError(f"--judge paper: {folder} not found or not a model folder ({judge.what}); on a machine "
                         f"with network run `hf download {judge.hub_id} --local-dir {folder}`")
    return folder
