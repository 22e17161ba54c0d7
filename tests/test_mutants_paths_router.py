"""Tests that kill the mutants of dataset file handling (most_eval/data/files.py: safe paths, output names and
paths) and of the MoST router's modality mask (most_reference/model.py) that their own tests let survive
(benchmarks/mutation/README.md).

Every expected value here is computed independently of the code under test: a hand count, a plain-Python loop or a
numpy call written out in the test, never a second call of the same function. Sections follow the modules in the
mutation report; each test names the mutant family it kills. The kill tests of the other modules are in the other
tests/test_mutants_*.py files (one per subject).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from most_eval.data import files as F


# ---------------------------------------------------------------------------------------------------------------
# dataset_files: output names, output paths, plain names, the symlink message


def test_safe_path_resolves_symlinks_instead_of_checking_lexically(tmp_path):
    """Planted-bug gap: a lexical check (no '..', not absolute) passes a symlink that leaves the root."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "deep" / "er").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.txt").write_text("SECRET")
    (root / "deep" / "er" / "door").symlink_to(outside)  # a directory symlink below the top level
    (root / "ok.txt").write_text("ok")
    (root / "deep" / "inside-link").symlink_to(root / "ok.txt")
    relative = "deep/er/door/secret.txt"
    assert ".." not in relative and not os.path.isabs(relative)  # lexically clean
    assert os.path.realpath(root / relative) == os.path.realpath(outside / "secret.txt")  # but it leaves root
    with pytest.raises(ValueError, match="escapes the dataset root") as err:
        F.safe_path(root, relative)
    assert "dangling" not in str(err.value) and "symlink to" in str(err.value)
    # a root that is itself reached through a symlink: paths inside it stay inside
    alias = tmp_path / "alias"
    alias.symlink_to(root)
    assert F.safe_path(alias, "ok.txt") == alias / "ok.txt"
    assert F.safe_path(root, "deep/inside-link") == root / "deep" / "inside-link"
    # a dangling link out says so
    (root / "gone").symlink_to(outside / "nope")
    with pytest.raises(ValueError, match="dangling symlink"):
        F.safe_path(root, "gone")


def _hashed(sample_id: str, name: str) -> str:
    """The documented prefixed form: 8 hex digits of the id's sha1 (lone surrogates passed through), '-', name."""
    import hashlib

    return hashlib.sha1(sample_id.encode("utf-8", "surrogatepass")).hexdigest()[:8] + "-" + name


def test_output_name_exact_forms():
    assert F.output_name("abc") == "abc" and F.output_name("XX") == "XX"  # safe ids stay, no suffix by default
    assert F.output_name("a/b c", ".wav") == _hashed("a/b c", "a_b_c") + ".wav"  # each odd character -> "_"
    assert F.output_name("..") == _hashed("..", "..") and F.output_name("...") == _hashed("...", "...")
    assert F.output_name("") == _hashed("", "")
    assert F.output_name("a\udc80") == _hashed("a\udc80", "a_")  # a lone surrogate still names one file
    long_id = "x" * 130
    assert F.output_name(long_id) == _hashed(long_id, "x" * 120)


def test_output_path_checks_every_part_and_the_root(tmp_path):
    root = tmp_path / "out"
    root.mkdir()
    assert F.output_path(root, "audio/t/a.wav") == root / "audio" / "t" / "a.wav"
    for relative, part in (("audio/../x.wav", ".."), ("a//b.wav", ""), ("a/b c.wav", "b c.wav")):
        with pytest.raises(ValueError) as err:
            F.output_path(root, relative)
        assert str(err.value) == f"output file {relative!r}: part {part!r} is not a plain file name"
    (root / "door").symlink_to(tmp_path)
    with pytest.raises(ValueError, match="escapes the dataset root"):
        F.output_path(root, "door/x.wav")


def test_plain_name_message_names_what_it_checked():
    with pytest.raises(ValueError) as err:
        F.plain_name("a/b")
    assert str(err.value).startswith("id 'a/b' is not a plain file name")
    with pytest.raises(ValueError) as err:
        F.plain_name("..", "speaker")
    assert str(err.value).startswith("speaker '..' is not a plain file name")


def test_safe_path_names_a_live_symlink_out_without_calling_it_dangling(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "secret.txt").write_text("x")
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(ValueError) as err:
        F.safe_path(root, "link.txt")
    assert str(err.value) == (f"path 'link.txt' escapes the dataset root {root} "
                              f"(symlink to {(tmp_path / 'secret.txt').resolve()})")


# ---------------------------------------------------------------------------------------------------------------
# The MoST router's modality mask: the renormalised path, the scaling path and the fall-back to DeepSeek-V2's router


def _router(**overrides):
    import json as _json

    import torch

    from most_reference.model import ModalityAwareRouter, MoSTConfig

    tiny = Path(__file__).resolve().parents[1] / "reference_impl" / "configs" / "most_tiny.json"
    torch.manual_seed(0)
    router = ModalityAwareRouter(MoSTConfig.from_dict({**_json.loads(tiny.read_text()), **overrides})).eval()
    with torch.no_grad():
        router.weight.normal_(0, 1.0)  # spread scores: distinct top-k
    return router


def _expected_routing(router, hidden, marks, k, renorm, scale):
    """numpy: softmax over all 8 experts, the other modality's 4 scores zeroed (text experts 0-3, audio 4-7), the k
    largest kept, then divided by their sum (renorm) or multiplied by the scaling factor."""
    logits = hidden.reshape(-1, hidden.shape[-1]).double().numpy() @ router.weight.detach().double().numpy().T
    scores = np.exp(logits - logits.max(axis=1, keepdims=True))
    scores /= scores.sum(axis=1, keepdims=True)
    if marks is not None:
        allowed = (np.arange(8)[None, :] >= 4) == (np.asarray(marks)[:, None] == 1)
        scores = scores * allowed
    order = np.argsort(-scores, axis=1)[:, :k]
    weights = np.take_along_axis(scores, order, axis=1)
    weights = weights / weights.sum(axis=1, keepdims=True) if renorm else weights * scale
    return order, weights


def _sorted_by_index(indices, weights):
    idx = indices.numpy()
    order = np.argsort(idx, axis=1)
    return np.take_along_axis(idx, order, axis=1), np.take_along_axis(weights.detach().double().numpy(), order, axis=1)


def test_router_renormalised_top_k_with_the_mask():
    """norm_topk_prob=True (DeepSeek-V2's option): the k masked scores divided by their own sum, per token."""
    import torch

    router = _router(norm_topk_prob=True, num_experts_per_tok=2)
    hidden = torch.randn(5, 64, generator=torch.Generator().manual_seed(3))  # 5 tokens != k: broadcasting shows
    marks = torch.tensor([0, 1, 1, 0, 1])
    _, weights, indices = router(hidden, marks)
    want_idx, want_w = _expected_routing(router, hidden, marks.tolist(), 2, renorm=True, scale=None)
    got_idx, got_w = _sorted_by_index(indices, weights)
    order = np.argsort(want_idx, axis=1)
    assert (got_idx == np.take_along_axis(want_idx, order, axis=1)).all()
    np.testing.assert_allclose(got_w, np.take_along_axis(want_w, order, axis=1), rtol=1e-5)
    np.testing.assert_allclose(weights.detach().sum(dim=-1).numpy(), 1.0, rtol=1e-6)
    # without marks the renormalised path still runs (transformers' router would not renormalise)
    _, weights, indices = router(hidden, None)
    want_idx, want_w = _expected_routing(router, hidden, None, 2, renorm=True, scale=None)
    got_idx, got_w = _sorted_by_index(indices, weights)
    order = np.argsort(want_idx, axis=1)
    np.testing.assert_allclose(got_w, np.take_along_axis(want_w, order, axis=1), rtol=1e-5)


def test_router_one_expert_is_scaled_not_renormalised():
    """k = 1: DeepSeek-V2 renormalises only for k > 1; one expert's weight is its score times the scaling factor."""
    import torch

    router = _router(norm_topk_prob=True, num_experts_per_tok=1, routed_scaling_factor=2.5)
    hidden = torch.randn(4, 64, generator=torch.Generator().manual_seed(4))
    marks = torch.tensor([1, 0, 1, 0])
    _, weights, indices = router(hidden, marks)
    want_idx, want_w = _expected_routing(router, hidden, marks.tolist(), 1, renorm=False, scale=2.5)
    assert (indices.numpy() == want_idx).all()
    np.testing.assert_allclose(weights.detach().double().numpy(), want_w, rtol=1e-5)


def test_router_without_marks_defers_to_deepseek_for_other_top_k_methods_and_refuses_a_mask():
    """No marks and no renormalisation: DeepSeek-V2's own router (group-limited greedy included). A mask with a
    top-k method other than greedy is refused with its message."""
    import torch

    router = _router(topk_method="group_limited_greedy", n_group=2, topk_group=1)
    hidden = torch.randn(3, 64, generator=torch.Generator().manual_seed(5))
    _, _, indices = router(hidden, None)
    assert indices.shape == (3, 2)
    with pytest.raises(NotImplementedError) as err:
        router(hidden, torch.tensor([0, 1, 0]))
    assert str(err.value) == "the modality mask is implemented for greedy top-k (DeepSeek-V2-Lite's)"
