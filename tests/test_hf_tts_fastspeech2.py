"""hf-tts on FastSpeech2Conformer: a tiny random model and HiFi-GAN saved through transformers' own classes (the
espnet/fastspeech2_conformer + espnet/fastspeech2_conformer_hifigan layouts), its g2p_en tokenizer reading a tiny
NLTK data folder built here (cmudict subset + a small averaged-perceptron tagger, in nltk's own package layouts), and
no download ever attempted."""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pytest
import torch
import transformers
from conftest import run_cli

from most_eval.core.hf_loading import ModelLoadError
from most_eval.models.hf_tts import HFTTS, HFTTSArgs

#: the test words and their ARPAbet pronunciations (the cmudict subset)
WORDS = {"the": ["DH", "AH0"], "cat": ["K", "AE1", "T"], "sat": ["S", "AE1", "T"], "on": ["AA1", "N"],
         "a": ["AH0"], "mat": ["M", "AE1", "T"]}
#: g2p_en's phoneme inventory; the vocabulary is ESPnet's token list order: <blank>, <unk>, phonemes, punctuation,
#: <sos/eos> (78 entries, as the real model's)
G2P_PHONEMES = ("AA0 AA1 AA2 AE0 AE1 AE2 AH0 AH1 AH2 AO0 AO1 AO2 AW0 AW1 AW2 AY0 AY1 AY2 B CH D DH EH0 EH1 EH2 ER0 ER1 "
                "ER2 EY0 EY1 EY2 F G HH IH0 IH1 IH2 IY0 IY1 IY2 JH K L M N NG OW0 OW1 OW2 OY0 OY1 OY2 P R S SH T TH "
                "UH0 UH1 UH2 UW UW0 UW1 UW2 V W Y Z ZH").split()
VOCAB = {t: i for i, t in enumerate(["<blank>", "<unk>", *G2P_PHONEMES, ",", ".", "?", "!", "'", "<sos/eos>"])}
FRAMES_PER_TOKEN, HOP = 3, 16  # fixed durations; the tiny HiFi-GAN upsamples 4 x 4


def write_zip(path, folder: str, files: dict[str, str]) -> None:
    """A package zip as nltk.download leaves it: the folder entry, then its files."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(zipfile.ZipInfo(folder + "/"), "")
        for name, text in files.items():
            zf.writestr(f"{folder}/{name}", text)
    os.chmod(path, 0o644)


def build_nltk_data(root):
    """``corpora/cmudict.zip`` (lines ``WORD 1 PH ON ES``), the averaged-perceptron tagger nltk >= 3.9 loads
    (``taggers/averaged_perceptron_tagger_eng/``: weights, tagdict, classes as JSON; a bias towards NN and a tag for
    each test word) and ``taggers/averaged_perceptron_tagger.zip``, which g2p_en checks for at import. Folders 0755:
    nltk refuses data that others can write to."""
    for folder in (root, root / "corpora", root / "taggers", root / "taggers" / "averaged_perceptron_tagger_eng"):
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o755)
    cmudict = "".join(f"{w.upper()} 1 {' '.join(p)}\n" for w, p in sorted(WORDS.items()))
    write_zip(root / "corpora" / "cmudict.zip", "cmudict", {"README": "test subset\n", "cmudict": cmudict})
    tagdict = {**{w: "NN" for w in WORDS}, "the": "DT", "a": "DT", "on": "IN", "sat": "VBD", ".": "."}
    tagger = {"weights.json": json.dumps({"bias": {"NN": 1.0}}), "tagdict.json": json.dumps(tagdict),
              "classes.json": json.dumps(sorted({"DT", "IN", "NN", "VBD", "."}))}
    named = {f"averaged_perceptron_tagger_eng.{k}": v for k, v in tagger.items()}
    for name, text in named.items():
        (root / "taggers" / "averaged_perceptron_tagger_eng" / name).write_text(text)
        os.chmod(root / "taggers" / "averaged_perceptron_tagger_eng" / name, 0o644)
    write_zip(root / "taggers" / "averaged_perceptron_tagger.zip", "averaged_perceptron_tagger", named)
    return root


def tiny_fastspeech2(folder):
    """FastSpeech2Conformer (hidden 16, one encoder/decoder layer, 8 mel bins) with its phoneme tokenizer in
    ``fastspeech2_conformer/``, a HiFi-GAN (hop 16, 22,050 Hz as the real config says) in
    ``fastspeech2_conformer_hifigan/``. The duration predictor's output is fixed at 3 frames per token (random
    weights predict 0 frames), so a text's length is known: tokens x 3 x 16 samples."""
    torch.manual_seed(0)
    config = transformers.FastSpeech2ConformerConfig(
        vocab_size=len(VOCAB), hidden_size=16, num_mel_bins=8, encoder_num_attention_heads=2, encoder_layers=1,
        encoder_linear_units=32, decoder_num_attention_heads=2, decoder_layers=1, decoder_linear_units=32,
        speech_decoder_postnet_layers=2, speech_decoder_postnet_units=16, encoder_kernel_size=3,
        decoder_kernel_size=3, duration_predictor_layers=1, duration_predictor_channels=16,
        energy_predictor_layers=1, energy_predictor_channels=16, pitch_predictor_layers=1,
        pitch_predictor_channels=16)
    model = transformers.FastSpeech2ConformerModel(config).eval()
    with torch.no_grad():  # log-domain durations: exp(log 4) - 1 = 3 frames for every token
        model.duration_predictor.linear.weight.zero_()
        model.duration_predictor.linear.bias.fill_(float(np.log(FRAMES_PER_TOKEN + 1.0)))
    model.save_pretrained(folder / "fastspeech2_conformer")
    vocab = folder / "vocab.json"
    vocab.write_text(json.dumps(VOCAB))
    transformers.FastSpeech2ConformerTokenizer(str(vocab), should_strip_spaces=True).save_pretrained(
        folder / "fastspeech2_conformer")
    transformers.FastSpeech2ConformerHifiGan(transformers.FastSpeech2ConformerHifiGanConfig(
        model_in_dim=8, upsample_initial_channel=16, upsample_rates=[4, 4], upsample_kernel_sizes=[8, 8],
        resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]], normalize_before=False, initializer_range=0.1,
        sampling_rate=22050)).save_pretrained(folder / "fastspeech2_conformer_hifigan")
    return folder


@pytest.fixture(scope="module")
def nltk_data(tmp_path_factory):
    """The tiny NLTK data, found through $NLTK_DATA (and nltk.data.path, read at nltk's import); downloads fail."""
    import nltk

    root = build_nltk_data(tmp_path_factory.mktemp("nltk_data"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NLTK_DATA", str(root))
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setattr(nltk.data, "path", [str(root), *nltk.data.path])

        def no_download(*args, **kwargs):
            raise AssertionError(f"nltk.download{args} attempted")

        mp.setattr(nltk, "download", no_download)
        yield root


@pytest.fixture(scope="module")
def folders(nltk_data, tmp_path_factory):
    return tiny_fastspeech2(tmp_path_factory.mktemp("fs2c"))


@pytest.fixture(scope="module")
def tts(folders):
    return HFTTS(HFTTSArgs(path=str(folders / "fastspeech2_conformer"),
                           vocoder=str(folders / "fastspeech2_conformer_hifigan")))


def test_the_tokenizer_phonemizes_with_g2p_en_from_the_local_nltk_data(tts):
    """"the cat sat on a mat." becomes the cmudict pronunciations (spaces stripped, as the real model was trained)
    and the end token, with nothing downloaded."""
    ids = tts.parts["tokenizer"]("the cat sat on a mat.")["input_ids"]
    phones = [p for w in "the cat sat on a mat".split() for p in WORDS[w]] + [".", "<sos/eos>"]
    assert ids == [VOCAB[p] for p in phones]


def test_synthesis_equals_the_documented_model_and_vocoder_calls(tts, folders):
    """Each waveform equals transformers' documented path run here (tokenizer -> model spectrogram -> HiFi-GAN), at
    the vocoder's rate, with the length the fixed durations imply; texts do not depend on their batch-mates."""
    texts = ["the cat sat.", "a mat", "the cat sat on a mat."]
    model = transformers.FastSpeech2ConformerModel.from_pretrained(folders / "fastspeech2_conformer").eval()
    vocoder = transformers.FastSpeech2ConformerHifiGan.from_pretrained(folders / "fastspeech2_conformer_hifigan")
    tokenizer = transformers.FastSpeech2ConformerTokenizer.from_pretrained(folders / "fastspeech2_conformer")
    audios = tts.synthesize(texts)
    assert tts.sample_rate == 22050 and all(a.sample_rate == 22050 for a in audios)
    for text, audio in zip(texts, audios):
        ids = tokenizer(text, return_tensors="pt")["input_ids"]
        with torch.inference_mode():
            expected = vocoder(model(ids, return_dict=True)["spectrogram"])[0].numpy()
        assert len(audio.samples) == ids.shape[-1] * FRAMES_PER_TOKEN * HOP
        np.testing.assert_allclose(audio.samples, expected, atol=1e-6)
        assert np.abs(audio.samples).max() > 1e-3  # real signal, not silence
    again = tts.synthesize([texts[2], texts[0]])
    np.testing.assert_array_equal(again[0].samples, audios[2].samples)


def test_empty_text_and_a_missing_vocoder_are_one_line_errors(tts, folders):
    with pytest.raises(ValueError, match="nothing to say"):
        tts.synthesize([""])
    with pytest.raises(ModelLoadError, match="vocoder=<fastspeech2_conformer_hifigan folder>"):
        HFTTS(HFTTSArgs(path=str(folders / "fastspeech2_conformer")))


@pytest.mark.slow
def test_missing_nltk_data_is_one_line_naming_the_download_before_any_attempt(folders, tmp_path):
    """Without the NLTK data (an empty $NLTK_DATA, no home data), the CLI stops with exit 2 and one line naming the
    nltk.downloader packages, before g2p_en is imported (so it never tries the network)."""
    import nltk

    home = tmp_path / "home"
    home.mkdir()
    empty = tmp_path / "no_nltk_data"
    empty.mkdir()
    default_paths = [p for p in nltk.data.path if os.path.isdir(os.path.join(p, "corpora"))
                     and not p.startswith(str(tmp_path.parent.parent))]
    assert not default_paths, f"this machine has system NLTK data: {default_paths}"
    proc = run_cli("run", "--model", "hf-tts", "--model-args",
                   f"path={folders / 'fastspeech2_conformer'},vocoder={folders / 'fastspeech2_conformer_hifigan'}",
                   "--tasks", "tts:librispeech-test-clean", "--output", str(tmp_path / "out"), "--no-progress",
                   env={"NLTK_DATA": str(empty), "HOME": str(home), "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert "g2p_en" in line and "python -m nltk.downloader -d DIR averaged_perceptron_tagger " \
        "averaged_perceptron_tagger_eng cmudict" in line and str(empty) in line
    assert "nltk_data] Error loading" not in proc.stderr  # no download was tried
