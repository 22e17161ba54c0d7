"""Speaker similarity with resemblyzer's real shipped weights on espeak-ng voices: same voice beats other voices."""

from __future__ import annotations

import itertools

import numpy as np
from conftest import espeak

from most_eval.audio import Audio
from most_eval_tasks.tts.embedders import build_embedder

TEXTS = ["the weather was lovely all weekend", "turn left at the second traffic light",
         "my sister bakes bread every friday"]
VOICES = ["en-us", "en-gb+f3", "en-gb-scotland", "en-us+f5"]


def test_same_voice_pairs_score_higher_than_different_voice_pairs():
    embedder = build_embedder("resemblyzer")
    clips = {(v, t): Audio(espeak(t, v), 16000) for v in VOICES for t in TEXTS}
    same, different = [], []
    for (v1, t1), (v2, t2) in itertools.combinations(clips, 2):
        if t1 == t2:
            continue  # compare different sentences only, so text overlap cannot explain the score
        sim = embedder.similarity([clips[(v1, t1)]], [clips[(v2, t2)]])[0]
        (same if v1 == v2 else different).append(sim)
    assert np.mean(same) > np.mean(different) + 0.05
    assert np.median(same) > np.percentile(different, 75)
    assert embedder.name.startswith("resemblyzer-")
