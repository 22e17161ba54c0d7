"""Spoken-QA accuracy rule: the DPR-style "has answer" test used by UltraEval-Audio.

UltraEval-Audio scores Llama Questions, Web Questions and TriviaQA (speech->text, and speech->speech after a Whisper
transcription) with ``audio_evals/evaluator/qa_exact_match.py: QAExistMatchEvaluator``, whose ``has_answer`` and
``SimpleTokenizer`` come from DPR (``dpr/data/qa_validation.py``, ``dpr/utils/tokenizers.py``). Their rule, which this
module reproduces with the standard library only:

1. Unicode NFD on the response and on each gold answer (composed and decomposed letters become equal; accents stay:
   "Pelé" does not match "Pele").
2. Tokenise: a token is a maximal run of letters, digits and combining marks (Unicode categories L*, N*, M*); every
   other character that is not a separator (Z*) or a control/format/unassigned code point (C*) is a token of its own
   (punctuation, symbols: "U.S." -> ``u . s .``); separators and C* characters only split.
3. Lower-case each token (``str.lower``, after tokenising).
4. Correct when, for any gold answer, its token list occurs as a contiguous run of the response's tokens.

What the rule does *not* do (unlike SQuAD-style ``normalize_answer``): articles stay ("the beatles" is not found in
"Beatles"), punctuation is not removed but tokenised ("U.S." needs "u . s ." in the response), numbers are compared
as tokens ("4" does not match "four"; "1,000" is ``1 , 000``). Quirks kept on purpose because the peers have them:
an answer with no token (empty, or only spaces) matches every response, even an empty one; an empty answer list
matches nothing. Answers that are not strings (a number in a dataset's answer list) are matched as ``str(answer)``
(UltraEval would crash there).
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from typing import Iterable

_WORD, _SINGLE, _SPLIT = 0, 1, 2  # character classes of the tokenizer


@lru_cache(maxsize=None)
def _char_class(ch: str) -> int:
    major = unicodedata.category(ch)[0]
    if major in "LNM":
        return _WORD
    if major in "ZC":
        return _SPLIT
    return _SINGLE


def tokenize(text: str) -> list[str]:
    """Lower-cased tokens of ``text`` after NFD, as DPR's SimpleTokenizer(uncased=True) gives them."""
    text = unicodedata.normalize("NFD", text)
    tokens: list[str] = []
    start = None  # start of the current word run
    for i, ch in enumerate(text):
        kind = _char_class(ch)
        if kind == _WORD:
            if start is None:
                start = i
            continue
        if start is not None:
            tokens.append(text[start:i])
            start = None
        if kind == _SINGLE:
            tokens.append(ch)
    if start is not None:
        tokens.append(text[start:])
    return [token.lower() for token in tokens]


def _contains(haystack: list[str], needle: list[str]) -> bool:
    n = len(needle)
    if n == 0:
        return True  # as DPR: an empty answer matches at position 0
    first = needle[0]
    for i in range(len(haystack) - n + 1):
        if haystack[i] == first and haystack[i:i + n] == needle:
            return True
    return False


def matching_answer(answers: Iterable[str] | str, response: str) -> str | None:
    """The first gold answer whose tokens occur contiguously in the response's tokens, or None."""
    if isinstance(answers, str):
        answers = [answers]
    response_tokens = tokenize(str(response))
    for answer in answers:
        if _contains(response_tokens, tokenize(str(answer))):
            return answer
    return None


def has_answer(answers: Iterable[str] | str, response: str) -> bool:
    """True when any gold answer (alias) occurs in the response under the DPR token rule (module docstring)."""
    return matching_answer(answers, response) is not None
