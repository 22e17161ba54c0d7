"""Tests that kill the mutants of the text-LM scoring path that its own tests let survive
(benchmarks/mutation/README.md): the lm-eval bridge (most_eval/core/lm_eval_bridge.py: text path, token path, the
named model) and the token-level scoring shared by hf-causal-lm and most (most_eval/models/causal_text_lm.py).

Every expected value here is computed independently of the code under test: a hand count, a plain-Python loop or a
numpy call written out in the test, never a second call of the same function. Sections follow the modules in the
mutation report; each test names the mutant family it kills. The kill tests of the other modules are in the other
tests/test_mutants_*.py files (one per subject).
"""

from __future__ import annotations

import numpy as np
import pytest


# ---------------------------------------------------------------------------------------------- lm_eval_bridge.py


class _FakeGenerator:
    """A text-only model that echoes what generate_text received, so the bridge's bookkeeping is visible."""

    name = "fake"

    def __init__(self):
        self.calls = []

    def capabilities(self):
        from most_eval.core.adapter import GENERATE_TEXT, SCORE_TEXT
        return {GENERATE_TEXT, SCORE_TEXT}

    def generate_text(self, prompts, stops, limit):
        self.calls.append((list(prompts), [list(s) for s in stops], limit))
        return [f"{p}|{','.join(s)}|{limit}" for p, s in zip(prompts, stops)]

    def score_text(self, contexts, continuations):
        return [(-float(len(c) + 10 * len(x)), len(x) == 1) for c, x in zip(contexts, continuations)]


class _Req:
    def __init__(self, *args):
        self.args = args


def test_bridge_generate_until_groups_by_budget_and_keeps_request_order():
    from most_eval.core.lm_eval_bridge import DEFAULT_MAX_GEN_TOKS, MostEvalLM

    model = _FakeGenerator()
    lm = MostEvalLM(model)
    assert lm.token_level is False and lm.tokenizer is None and DEFAULT_MAX_GEN_TOKS == 256
    requests = [_Req("a", {"until": ["\n", "."], "max_gen_toks": 8}), _Req("b", {"until": "Q:"}),
                _Req("c", {"max_gen_toks": 8}), _Req("d", {"until": None, "max_gen_toks": "3"})]
    assert lm.generate_until(requests) == ["a|\n,.|8", "b|Q:|256", "c||8", "d||3"]
    assert model.calls == [(["d"], [[]], 3), (["a", "c"], [["\n", "."], []], 8), (["b"], [["Q:"]], 256)]


def test_bridge_text_path_scores_and_rolling_documents():
    from most_eval.core.lm_eval_bridge import MostEvalLM

    lm = MostEvalLM(_FakeGenerator())
    got = lm.loglikelihood([_Req("ctx", "x"), _Req("", "yz")])
    assert got == [(-13.0, True), (-20.0, False)]
    assert lm.loglikelihood_rolling([_Req("abc"), _Req("")]) == [-30.0, 0.0]
    assert lm.loglikelihood([]) == []


def test_bridge_builds_a_named_model_on_cpu_by_default(monkeypatch):
    import most_eval.registry as registry
    from most_eval.run.lm_eval_model import NamedMostEvalLM

    seen = []

    def fake_build(name, args, device):
        seen.append((name, args, device))
        return _FakeGenerator()

    monkeypatch.setattr(registry, "build_model", fake_build)
    NamedMostEvalLM("dummy", batch_size=4, max_batch_size=None, device=None, path="/m", seed=3, skip=None)
    NamedMostEvalLM("dummy", device="cuda:1")
    assert seen == [("dummy", {"path": "/m", "seed": "3"}, "cpu"), ("dummy", {}, "cuda:1")]


# ---------------------------------------------------------------------- models/causal_text_lm.py (CausalTextLM)


class _CharTokenizer:
    """A Llama-like toy tokenizer: BOS ``<s>`` = 0 added by default (also before a literal ``<s>``), EOS = 1;
    letters a-z are 2..27, a lone space is 28 and a space glued to the following letter is one token, 30..55 (so a
    pair's split is context-sensitive)."""

    bos_token_id, eos_token_id = 0, 1

    def encode(self, text, add_special_tokens=True):
        ids, i = ([0] if add_special_tokens else []), 0
        if text.startswith("<s>"):  # the literal BOS text is the BOS token (a second one when BOS is added)
            ids, i = ids + [0], 3
        while i < len(text):
            if text[i] == " " and i + 1 < len(text) and text[i + 1].isalpha():
                ids.append(30 + ord(text[i + 1]) - 97)
                i += 2
            else:
                ids.append(28 if text[i] == " " else 2 + ord(text[i]) - 97)
                i += 1
        return ids

    def decode(self, token_id):
        return {0: "<s>", 1: "</s>"}[token_id]


_VOCAB = 56
_EMBED = np.random.default_rng(7).normal(size=(_VOCAB, _VOCAB))  # logits row of each input token


class _ToyCausalModel:
    """logits[b, t] = E[ids[b, t]] + 0.3 * (t + 1) * cos(v): causal (position t reads tokens <= t only) and
    position-dependent, so left truncation and right padding are both visible in the scores."""

    def __init__(self):
        self.calls = []

    def __call__(self, ids):
        import torch

        self.calls.append(ids.clone())
        t = torch.arange(ids.shape[1], dtype=torch.float64)[None, :, None] + 1
        logits = torch.tensor(_EMBED)[ids] + 0.3 * t * torch.cos(torch.arange(_VOCAB, dtype=torch.float64))
        return type("Out", (), {"logits": logits.to(torch.float32)})()


def _toy_lm(max_length=6, batch_size=1):
    from most_eval.models.causal_text_lm import CausalTextLM

    class Toy(CausalTextLM):
        text_batch_size = batch_size
        text_max_length_override = max_length
        device = "cpu"

    lm = Toy()
    lm.model, lm.tokenizer = _ToyCausalModel(), _CharTokenizer()
    return lm


def _toy_logp_rows(window):
    """numpy: natural-log softmax of the toy model's logits at every position of one input window."""
    z = _EMBED[np.asarray(window)] + 0.3 * (np.arange(len(window))[:, None] + 1) * np.cos(np.arange(_VOCAB))
    return z - np.log(np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True)) - z.max(1, keepdims=True)


def _toy_score(ctx, cont, max_length):
    """The expected (logp, greedy), written out: one window = the last max_length tokens of ctx + cont[:-1]; the
    token cont[j] is predicted at the window position of full index len(ctx) + j - 1."""
    full = list(ctx) + list(cont)
    window = full[:-1][-max_length:]
    offset = len(full) - 1 - len(window)  # tokens cut from the left
    rows = _toy_logp_rows(window)
    total, greedy = 0.0, True
    for j, tok in enumerate(cont):
        p = len(ctx) + j - 1 - offset
        total += rows[p, tok]
        greedy &= int(np.argmax(rows[p])) == tok
    return total, greedy


def _toy_greedy_continuation(ctx, n, max_length):
    """n tokens decoded greedily from the toy model in numpy (each step re-reads the last max_length tokens)."""
    seq = list(ctx)
    for _ in range(n):
        seq.append(int(np.argmax(_toy_logp_rows(seq[-max_length:])[-1])))
    return seq[len(ctx):]


def test_causal_text_lm_score_tokens_truncates_left_pads_right_and_batches():
    """Kills hf_lm ``score_tokens`` mutants: the window (``limit = max_length + 1``, ``[-limit:][:-1]``), the
    longest-first batching and right padding (batch_size 3 over 5 lengths), the picked positions, the gather/sum,
    greedy flags, empty continuations (0.0, True) and the result order."""
    L = 6
    greedy_cont = _toy_greedy_continuation([0, 5, 9], 3, L)
    pairs = [([0, 5, 9], [12, 3]),                 # fits: window of 4
             ([0, 2, 3, 4, 5, 6, 7, 8], [9, 10]),  # 10 tokens: the window drops 3 from the left
             ([0, 5, 9], greedy_cont),             # greedy by construction
             ([4], []),                            # empty continuation
             ([0], [20]),                          # one-token window
             ([7, 7, 7, 7, 7], [1, 2, 3, 4, 5, 6])]  # continuation of exactly max_length: only ctx[-1:] is kept
    for batch_size in (1, 3, 8):
        lm = _toy_lm(L, batch_size)
        got = lm.score_tokens([c for c, _ in pairs], [x for _, x in pairs])
        assert len(got) == len(pairs)
        for (ctx, cont), (logp, greedy) in zip(pairs, got):
            if not cont:
                assert (logp, greedy) == (0.0, True)
                continue
            want, want_greedy = _toy_score(ctx, cont, L)
            assert logp == pytest.approx(want, rel=1e-5, abs=1e-5) and greedy is want_greedy
        assert got[2][1] is True and got[0][1] is False
        widths = [c.shape for c in lm.model.calls]
        want_widths = {1: [(1, 6), (1, 6), (1, 5), (1, 4), (1, 1)], 3: [(3, 6), (2, 4)], 8: [(5, 6)]}[batch_size]
        assert widths == want_widths
        for call in lm.model.calls:  # right padding with 0 after each row's own tokens
            assert call.dtype.is_floating_point is False
    lm = _toy_lm(L, 3)
    lm.score_tokens([[0, 5, 9], [0, 2, 3, 4, 5, 6, 7, 8]], [[12, 3], [9, 10]])
    assert lm.model.calls[0].tolist() == [[4, 5, 6, 7, 8, 9], [0, 5, 9, 12, 0, 0]]


def test_causal_text_lm_score_tokens_errors_and_empty_input():
    lm = _toy_lm(4)
    assert lm.score_tokens([], []) == [] and lm.model.calls == []
    assert lm.score_tokens([[], [3]], [[], []]) == [(0.0, True), (0.0, True)]  # an empty pair needs no context
    with pytest.raises(ValueError) as err:
        lm.score_tokens([[0], []], [[3], [4]])
    assert str(err.value) == "score_tokens needs at least one context token (use prefix_token_id)"
    with pytest.raises(ValueError) as err:
        lm.score_tokens([[0]], [[1, 2, 3, 4, 5]])
    assert str(err.value) == "continuation of 5 tokens exceeds max_length 4"
    got = lm.score_tokens([[0]], [[1, 2, 3, 4]])  # exactly max_length is allowed
    assert got[0][0] == pytest.approx(_toy_score([0], [1, 2, 3, 4], 4)[0], rel=1e-5)


def test_causal_text_lm_encode_and_pairs_as_lm_eval():
    """Kills hf_lm ``_encode`` / ``_encode_pair`` / ``score_text`` mutants: the tokenizer's own special-token default,
    no second BOS when the text starts with it, trailing context spaces moved to the continuation, an empty context
    conditioned on the prefix token (or on the continuation's own leading BOS)."""
    lm = _toy_lm(40)
    a, c, t = 2, 4, 21  # letters
    assert lm._encode("cat") == [0, c, a, t]
    assert lm._encode("cat", add_special_tokens=False) == [c, a, t]
    assert lm._encode("cat", add_special_tokens=True) == [0, c, a, t]
    assert lm._encode("<s>cat") == [0, c, a, t]  # not [0, 0, ...]
    assert lm._encode("<s>cat", add_special_tokens=True) == [0, 0, c, a, t]  # an explicit choice is passed on
    sp_c, sp_a = 30 + 2, 30 + 0
    assert lm._encode_pair("a cat ", "at") == ([0, a, sp_c, a, t], [sp_a, t])  # "a cat" | " at": the space moves
    assert lm._encode_pair("a cat", " at") == ([0, a, sp_c, a, t], [sp_a, t])
    assert lm._encode_pair("a  ", "t") == ([0, a], [28, 30 + 19])  # "a" | "  t": a lone space, then " t"
    assert lm._encode_pair("", "cat") == ([0], [c, a, t])
    assert lm._encode_pair("", "<s>cat") == ([0], [c, a, t])  # the continuation's BOS is the context
    assert lm._encode_pair("", "") == ([0], [])
    contexts, conts = ["a cat ", "", "ca"], ["at", "cat", "t"]
    got = lm.score_text(contexts, conts)
    want_pairs = [([0, a, sp_c, a, t], [sp_a, t]), ([0], [c, a, t]), ([0, c, a], [t])]
    for (logp, greedy), (cx, x) in zip(got, want_pairs):
        want, want_greedy = _toy_score(cx, x, 40)
        assert logp == pytest.approx(want, rel=1e-5, abs=1e-5) and greedy is want_greedy
    assert len(got) == 3


# ------------------------------------------------------------------------- lm_eval_bridge.py: the token path


class _FakeTokenModel:
    """A token-level model: score_tokens records its inputs and scores a pair as -(sum of ids) - len(ctx) / 2
    (greedy when the continuation is one token), returned as numpy scalars so the bridge's casts are visible."""

    name = "fake-tokens"
    prefix_token_id = 0

    def __init__(self, max_length=3):
        self.max_length = max_length
        self.tokenizer = _CharTokenizer()
        self.calls = []

    def capabilities(self):
        from most_eval.core.adapter import SCORE_TEXT
        return {SCORE_TEXT}

    def score_tokens(self, contexts, continuations):
        self.calls.append(([list(c) for c in contexts], [list(x) for x in continuations]))
        return [(np.float32(-sum(x) - len(c) / 2), np.bool_(len(x) == 1)) for c, x in zip(contexts, continuations)]


class _Hook:
    def __init__(self):
        self.partials = []

    def add_partial(self, kind, key, value):
        self.partials.append((kind, key, value))


def _fake_score(ctx, cont):
    return float(-sum(cont) - len(ctx) / 2), len(cont) == 1


def test_bridge_token_path_truncates_contexts_and_caches_per_request():
    """Kills lm_eval_bridge ``_loglikelihood_tokens`` mutants: ``keep = max_length + 1 - len(cont)`` context tokens,
    the two error texts, float/bool answers, the cache only for requests with a key, the empty batch."""
    from most_eval.core.lm_eval_bridge import MostEvalLM

    model = _FakeTokenModel(max_length=3)
    lm = MostEvalLM(model)
    assert lm.token_level is True and lm.tokenizer is model.tokenizer and lm.max_length == 3
    assert lm.prefix_token_id == 0 and lm.eot_token_id == 1
    lm.cache_hook = _Hook()
    assert lm._loglikelihood_tokens([]) == [] and model.calls == []
    requests = [(("c", "x"), [5, 6, 7, 8], [9]),      # keep 3 of 4 context tokens
                (None, [5, 6, 7, 8], [9, 10, 11]),    # keep 1
                (("d", "y"), [4], [2, 3]),            # nothing cut
                (("e", "z"), [1, 2, 3], [4, 5])]      # keep 2
    got = lm._loglikelihood_tokens(requests)
    want_ctx = [[6, 7, 8], [8], [4], [2, 3]]
    want_cont = [[9], [9, 10, 11], [2, 3], [4, 5]]
    assert model.calls == [(want_ctx, want_cont)]
    assert got == [_fake_score(c, x) for c, x in zip(want_ctx, want_cont)]
    assert all(type(lp) is float and type(g) is bool for lp, g in got)
    assert lm.cache_hook.partials == [("loglikelihood", ("c", "x"), got[0]), ("loglikelihood", ("d", "y"), got[2]),
                                      ("loglikelihood", ("e", "z"), got[3])]
    for bad in ([(None, [], [1])], [(None, [1], [])]):
        with pytest.raises(ValueError) as err:
            lm._loglikelihood_tokens(bad)
        assert str(err.value) == "loglikelihood needs a non-empty context and continuation (in tokens)"
    with pytest.raises(ValueError) as err:
        lm._loglikelihood_tokens([(None, [1], [1, 2, 3, 4])])
    assert str(err.value) == "continuation of 4 tokens is longer than the model's maximum length 3"
    lm._loglikelihood_tokens([(None, [1, 2], [1, 2, 3])])  # exactly max_length: one context token kept
    assert model.calls[-1] == ([[2]], [[1, 2, 3]])


def test_bridge_token_path_loglikelihood_encodes_as_lm_eval(capsys):
    """``loglikelihood`` over a token-level model goes through lm-eval's encoding (tok_encode: BOS by the tokenizer's
    default, none added to a text that starts with it), not through score_text. Its progress bar is on by default
    (``disable_tqdm=False``, as HFLM's; kills ``loglikelihood__mutmut_1``)."""
    from most_eval.core.lm_eval_bridge import MostEvalLM

    model = _FakeTokenModel(max_length=8)
    lm = MostEvalLM(model)
    a, c, t = 2, 4, 21
    assert lm.tok_encode("cat") == [0, c, a, t] and lm.tok_encode("<s>cat") == [0, c, a, t]
    assert lm.tok_encode("cat", add_special_tokens=False) == [c, a, t]
    assert lm.tok_encode("<s>cat", add_special_tokens=True) == [0, 0, c, a, t]  # kills tok_encode__mutmut_8
    got = lm.loglikelihood([_Req("ca", "t"), _Req("", "cat"), _Req("a cat ", "at")])
    want_ctx = [[0, c, a], [0], [0, a, 30 + 2, a, t]]
    want_cont = [[t], [c, a, t], [30 + 0, t]]
    assert model.calls == [(want_ctx, want_cont)]
    assert got == [_fake_score(cx, x) for cx, x in zip(want_ctx, want_cont)]
    assert "Tokenizing inputs" in capsys.readouterr().err
    lm.loglikelihood([_Req("ca", "t")], disable_tqdm=True)
    assert "Tokenizing inputs" not in capsys.readouterr().err


def test_bridge_token_path_rolling_windows_sum_per_document():
    """Kills ``loglikelihood_rolling`` token-path mutants: lm-eval's disjoint rolling windows (max_seq_len =
    max_length, context_len 1, the first window on the prefix token), worked out by hand, summed per document and
    cached per document."""
    from most_eval.core.lm_eval_bridge import MostEvalLM

    model = _FakeTokenModel(max_length=3)
    lm = MostEvalLM(model)
    lm.cache_hook = _Hook()
    # "abcdefg" -> [0, 2, 3, 4, 5, 6, 7, 8]; windows (context, predicted): ([0], [0, 2, 3]), ([3], [4, 5, 6]),
    # ([5, 6], [7, 8]).  "ab" -> [0, 2, 3]: one window ([0], [0, 2, 3]).
    got = lm.loglikelihood_rolling([_Req("abcdefg"), _Req("ab")])
    want_doc1 = _fake_score([0], [0, 2, 3])[0] + _fake_score([3], [4, 5, 6])[0] + _fake_score([5, 6], [7, 8])[0]
    want_doc2 = _fake_score([0], [0, 2, 3])[0]
    assert got == [pytest.approx(want_doc1), pytest.approx(want_doc2)]
    assert sorted(zip(*model.calls[0])) == sorted([([0], [0, 2, 3]), ([3], [4, 5, 6]), ([5, 6], [7, 8]),
                                                   ([0], [0, 2, 3])])
    assert lm.cache_hook.partials == [("loglikelihood_rolling", ("abcdefg",), got[0]),
                                      ("loglikelihood_rolling", ("ab",), got[1])]
    assert lm.loglikelihood_rolling([]) == []
