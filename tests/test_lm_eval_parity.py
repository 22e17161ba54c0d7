"""``hf-causal-lm`` through the lm-eval bridge scores exactly as lm-eval's own ``HFLM`` (``lm_eval --model hf``).

Two tiny random-weight models built here from transformers configs, each with a byte-level BPE tokenizer trained on
the fixture text and saved through transformers' own classes: a GPT-2 (BOS = EOS = the last id, no BOS added on
encode) and a Llama (BOS id 0 added on encode, EOS id 1). Both read 32 tokens, so the two-shot prompts of
``tests/data/text_tasks/tiny_mc.yaml`` are left-truncated and the long document of ``tiny_ppl.yaml`` is scored in
rolling windows. Everything is local (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE); nothing is downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import transformers

DATA = Path(__file__).parent / "data" / "text_tasks"
MAX_LENGTH = 32  # the test models' context: the long prompts and the long document exceed it
TOL = 1e-4  # natural-log units, per request / per document


def _fixture_text() -> list[str]:
    texts = []
    for path in sorted(DATA.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            doc = json.loads(line)
            texts.append(" ".join([doc.get("text", ""), doc.get("question", ""), *doc.get("choices", [])]))
    return texts


def _tiny_lm(folder: Path, kind: str) -> None:
    """A random-weight causal LM with its BPE tokenizer, saved as a transformers folder."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<s>", "</s>", "<unk>"] if kind == "llama" else []  # the Llama's BOS gets id 0
    tok.train_from_iterator(_fixture_text(), trainers.BpeTrainer(
        vocab_size=320, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    torch.manual_seed(0)
    if kind == "gpt2":
        tok.add_special_tokens(["<|endoftext|>"])  # the last id, as in GPT-2
        fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>",
                                                    eos_token="<|endoftext|>", unk_token="<|endoftext|>")
        cfg = transformers.GPT2Config(vocab_size=len(fast), n_positions=MAX_LENGTH, n_embd=32, n_layer=2, n_head=2,
                                      bos_token_id=fast.eos_token_id, eos_token_id=fast.eos_token_id)
        model = transformers.GPT2LMHeadModel(cfg)
    else:
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                           special_tokens=[("<s>", 0)])  # adds BOS like Llama's
        fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                                    unk_token="<unk>")
        cfg = transformers.LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                       num_attention_heads=2, num_key_value_heads=2,
                                       max_position_embeddings=MAX_LENGTH, bos_token_id=0, eos_token_id=1,
                                       tie_word_embeddings=False)
        model = transformers.LlamaForCausalLM(cfg)
    fast.save_pretrained(folder)
    model.save_pretrained(folder)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Offline, in the task folder (the task YAMLs name their JSONL files relative to it)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("HF_DATASETS_OFFLINE", "1")
        mp.chdir(DATA)
        root = tmp_path_factory.mktemp("tiny_lms")
        for kind in ("gpt2", "llama"):
            (root / kind).mkdir()
            _tiny_lm(root / kind, kind)
        from lm_eval.tasks import TaskManager

        yield {"root": root, "tasks": TaskManager(include_path=str(DATA))}


@pytest.fixture(scope="module")
def pair(env):
    """Per model kind: (lm-eval's HFLM, the bridge over hf-causal-lm), built once."""
    from lm_eval.models.huggingface import HFLM

    from most_eval.core.lm_eval_bridge import MostEvalLM
    from most_eval.models.hf_lm import HFCausalLM, HFCausalLMArgs

    built = {}

    def get(kind: str):
        if kind not in built:
            folder = str(env["root"] / kind)
            built[kind] = (HFLM(pretrained=folder, device="cpu", batch_size=1),
                           MostEvalLM(HFCausalLM(HFCausalLMArgs(path=folder))))
        return built[kind]

    return get


def _evaluate(lm, task: str, env) -> dict:
    from lm_eval import simple_evaluate

    return simple_evaluate(model=lm, tasks=[task], task_manager=env["tasks"], log_samples=True, bootstrap_iters=0)


def _responses(out: dict, task: str) -> list[tuple]:
    """Every request's logged response in document order: (logp, greedy) or (logp,) for rolling documents."""
    rows = []
    for s in sorted(out["samples"][task], key=lambda s: s["doc_id"]):
        for (resp,) in s["resps"]:
            rows.append((float(resp[0]), bool(resp[1])) if isinstance(resp, (list, tuple)) else (float(resp),))
    return rows


def _max_diff(a: list[tuple], b: list[tuple]) -> float:
    assert len(a) == len(b) and a
    assert [r[1:] for r in a] == [r[1:] for r in b]  # the greedy flags agree
    return max(abs(x[0] - y[0]) for x, y in zip(a, b))


def _instances(kind: str, args: list[tuple]):
    from lm_eval.api.instance import Instance

    return [Instance(request_type=kind, doc={}, arguments=a, idx=i) for i, a in enumerate(args)]


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_multiple_choice_task_equals_hflm(env, pair, kind):
    """Two-shot prompts longer than the model's 32 tokens: pair encoding and left truncation as HFLM's."""
    task = "most_tiny_mc"
    ref, ours = pair(kind)
    want, got = _evaluate(ref, task, env), _evaluate(ours, task, env)
    assert _max_diff(_responses(want, task), _responses(got, task)) < TOL
    for metric in ("acc,none", "acc_norm,none"):
        assert got["results"][task][metric] == want["results"][task][metric]
    assert got["n-shot"][task] == 2
    contexts = {s["arguments"][0][0] for s in got["samples"][task]}  # each request's (context, continuation)
    assert max(len(ours.tok_encode(c)) for c in contexts) > ours.max_length == MAX_LENGTH  # truncation was needed


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_rolling_perplexity_task_equals_hflm(env, pair, kind):
    task = "most_tiny_ppl"
    ref, ours = pair(kind)
    want, got = _evaluate(ref, task, env), _evaluate(ours, task, env)
    assert _max_diff(_responses(want, task), _responses(got, task)) < TOL
    for metric in ("word_perplexity,none", "byte_perplexity,none", "bits_per_byte,none"):
        assert got["results"][task][metric] == pytest.approx(want["results"][task][metric], rel=1e-5)


def test_a_document_longer_than_the_model_is_scored_in_rolling_windows(env, pair):
    """The long document goes to the model as lm-eval's disjoint windows of at most max_length tokens each."""
    from lm_eval.utils import get_rolling_token_windows

    ref, ours = pair("gpt2")
    docs = [json.loads(line)["text"] for line in (DATA / "tiny_ppl.jsonl").read_text().splitlines()]
    long_doc = max(docs, key=len)
    n_tokens = len(ours.tok_encode(long_doc))
    assert n_tokens > 3 * MAX_LENGTH
    calls = []
    score_tokens = ours.model.score_tokens

    def spy(contexts, continuations):
        calls.extend(zip(contexts, continuations))
        return score_tokens(contexts, continuations)

    ours.model.score_tokens = spy  # instance attribute: shadows the method for this test only
    try:
        (got,) = ours.loglikelihood_rolling(_instances("loglikelihood_rolling", [(long_doc,)]))
    finally:
        del ours.model.score_tokens
    expected = list(get_rolling_token_windows(ours.tok_encode(long_doc), ours.prefix_token_id, MAX_LENGTH, 1))
    assert len(calls) == len(expected) > 1
    assert sum(len(cont) for _, cont in calls) == n_tokens  # every token predicted once
    assert all(len(ctx) + len(cont) - 1 <= MAX_LENGTH for ctx, cont in calls)  # each forward pass fits
    (want,) = ref.loglikelihood_rolling(_instances("loglikelihood_rolling", [(long_doc,)]))
    assert abs(got - want) < TOL


REQUESTS = [
    ("Question: What do cows drink?\nAnswer:", " water"),
    ("The cat sat on the ", "mat"),  # trailing space: moved to the continuation before encoding
    ("Grass is usually  ", "green."),
    ("", "The sun rises in the east."),  # empty context: conditioned on the prefix token
    (" ".join(["The train left the station at noon."] * 6), " The end."),  # longer than 32 tokens: left-truncated
]


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_loglikelihood_requests_equal_hflm_and_score_text(env, pair, kind):
    """Request by request, the bridge equals HFLM; the adapter's text-level score_text (and a batched adapter)
    agree with it."""
    from most_eval.core.lm_eval_bridge import MostEvalLM
    from most_eval.models.hf_lm import HFCausalLM, HFCausalLMArgs

    ref, ours = pair(kind)
    want = ref.loglikelihood(_instances("loglikelihood", REQUESTS))
    got = ours.loglikelihood(_instances("loglikelihood", REQUESTS))
    assert _max_diff(want, got) < TOL
    contexts, continuations = map(list, zip(*REQUESTS))
    assert _max_diff(want, ours.model.score_text(contexts, continuations)) < TOL
    batched = MostEvalLM(HFCausalLM(HFCausalLMArgs(path=str(env["root"] / kind), batch_size=4)))
    assert _max_diff(want, batched.loglikelihood(_instances("loglikelihood", REQUESTS))) < TOL


def test_bos_id_zero_is_the_prefix_token(env, pair):
    """A BOS of id 0 is the prefix (not skipped for the EOS, as a falsy ``bos or eos`` would)."""
    ref, ours = pair("llama")
    assert ours.model.tokenizer.bos_token_id == 0 and ours.model.tokenizer.eos_token_id == 1
    assert ours.prefix_token_id == ours.model.prefix_token_id == ref.prefix_token_id == 0
    text = "She opened the door and walked in."
    ids = ours.model.tokenizer.encode(text, add_special_tokens=False)
    (got, _), = ours.loglikelihood(_instances("loglikelihood", [("", text)]))
    (want, _), = ref.loglikelihood(_instances("loglikelihood", [("", text)]))
    (with_bos, _), (with_eos, _) = ours.model.score_tokens([[0], [1]], [ids, ids])
    assert abs(got - want) < TOL and abs(got - with_bos) < TOL
    assert abs(with_bos - with_eos) > 1e-3  # the test would catch the EOS prefix
    (rolled,) = ours.loglikelihood_rolling(_instances("loglikelihood_rolling", [(text,)]))
    (ref_rolled,) = ref.loglikelihood_rolling(_instances("loglikelihood_rolling", [(text,)]))
    assert abs(rolled - ref_rolled) < TOL


def test_a_text_only_model_is_served_through_score_text():
    """Without score_tokens the bridge hands lm-eval's strings to score_text as they are (documented text path)."""
    from most_eval.core.adapter import Model
    from most_eval.core.lm_eval_bridge import MostEvalLM

    seen = []

    class TextOnly(Model):
        name = "text-only"

        def score_text(self, contexts, continuations):
            seen.extend(zip(contexts, continuations))
            return [(-float(len(c)), False) for c in continuations]

    lm = MostEvalLM(TextOnly())
    assert not lm.token_level
    assert lm.loglikelihood(_instances("loglikelihood", [("a b ", "c")])) == [(-1.0, False)]
    assert lm.loglikelihood_rolling(_instances("loglikelihood_rolling", [("a whole document",)])) == [-16.0]
    assert seen == [("a b ", "c"), ("", "a whole document")]
