"""Speaker similarity with resemblyzer's real shipped weights on espeak-ng voices: same voice beats other voices."""

from __future__ import annotations

import itertools

import numpy as np
from conftest import espeak

from most_eval.core.audio import Audio
from most_eval.models.speaker_embedders import build_embedder

TEXTS = ["the weather was lovely all weekend", "turn left at the second traffic light",
         "my sister bakes bread every friday"]
VOICES = ["en-us", "en-gb+f3", "en-gb-scotland", "en-us+f5"]


def test_same_voice_pairs_score_higher_than_different_voice_pairs():
    embedder = build_embedder("resemblyzer")
    keys = [(v, t) for v in VOICES for t in TEXTS]
    emb = dict(zip(keys, embedder.embed([Audio(espeak(t, v), 16000) for v, t in keys])))
    same, different = [], []
    for (v1, t1), (v2, t2) in itertools.combinations(keys, 2):
        if t1 == t2:
            continue  # compare different sentences only, so text overlap cannot explain the score
        sim = float(emb[(v1, t1)] @ emb[(v2, t2)])  # unit vectors: the cosine
        (same if v1 == v2 else different).append(sim)
    # the pairwise API agrees with the embeddings
    a, b = keys[0], keys[4]
    assert abs(embedder.similarity([Audio(espeak(a[1], a[0]), 16000)], [Audio(espeak(b[1], b[0]), 16000)])[0]
               - float(emb[a] @ emb[b])) < 1e-5
    assert np.mean(same) > np.mean(different) + 0.05
    assert np.median(same) > np.percentile(different, 75)
    assert embedder.name.startswith("resemblyzer-")
