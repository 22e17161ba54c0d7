"""Tiny random-weight models built offline through each architecture's own config, tokenizer and processor classes,
shared by the in-process and the served tests. The ``served_*`` ones are what a real vLLM server (CPU) serves: its CPU
attention needs a head size of at least 32, so each of their attentions has 2 heads of 32."""

from __future__ import annotations

import json
from pathlib import Path

import transformers

WHISPER_SPECIALS = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|translate|>",
                    "<|notimestamps|>", "<|nocaptions|>", "<|startoflm|>", "<|startofprev|>"]
#: the special tokens Qwen2AudioProcessor and its chat template need
QWEN2_AUDIO_SPECIALS = ["<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"]


def byte_vocab(first: str) -> dict[str, int]:
    """``first`` (the end-of-text token) at 0, then the 256 byte-level symbols: a BPE vocabulary with no merges."""
    from tokenizers import pre_tokenizers

    return {first: 0, **{c: i + 1 for i, c in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}}


def tiny_whisper(folder: Path, d_model: int = 16, max_target_positions: int = 64, max_length: int = 32,
                 init_std: float = 0.02, mute_specials: bool = False) -> Path:
    """A 1+1-layer Whisper with a 27-letter BPE vocabulary and Whisper's special tokens (language, task and
    no-timestamps ids in its generation config, as ``generate(language=...)`` and vLLM's transcription prompt
    need). ``mute_specials``: the special tokens but EOS get logit 0 (the output projection is the embedding), so a
    random decoder speaks letters instead of ending at once on a special token."""
    import torch

    torch.manual_seed(0)  # unseeded, about 1 draw in 10 made `generate` loop until the CLI timeout
    folder.mkdir(parents=True, exist_ok=True)
    vocab = {c: i for i, c in enumerate(["!", *"abcdefghijklmnopqrstuvwxyz", "Ġ"])}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tok = transformers.WhisperTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"),
                                        additional_special_tokens=WHISPER_SPECIALS[1:], unk_token="<|endoftext|>",
                                        bos_token="<|endoftext|>", eos_token="<|endoftext|>")
    fe = transformers.WhisperFeatureExtractor(feature_size=80)
    transformers.WhisperProcessor(feature_extractor=fe, tokenizer=tok).save_pretrained(folder)
    ids = {t: tok.convert_tokens_to_ids(t) for t in WHISPER_SPECIALS}
    cfg = transformers.WhisperConfig(vocab_size=len(tok), d_model=d_model, encoder_layers=1, decoder_layers=1,
                                     encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=2 * d_model,
                                     decoder_ffn_dim=2 * d_model, max_source_positions=1500,
                                     max_target_positions=max_target_positions, init_std=init_std,
                                     decoder_start_token_id=ids["<|startoftranscript|>"],
                                     eos_token_id=ids["<|endoftext|>"], pad_token_id=ids["<|endoftext|>"],
                                     bos_token_id=ids["<|endoftext|>"])
    model = transformers.WhisperForConditionalGeneration(cfg)
    gen = model.generation_config
    gen.decoder_start_token_id = ids["<|startoftranscript|>"]
    gen.lang_to_id = {"<|en|>": ids["<|en|>"]}
    gen.task_to_id = {"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]}
    gen.no_timestamps_token_id = ids["<|notimestamps|>"]
    gen.is_multilingual = True
    gen.max_length = max_length
    gen.begin_suppress_tokens = None  # defaults name ids of the real 51k vocabulary
    gen.suppress_tokens = None
    gen._from_model_config = False  # else loading rebuilds it from config.json and drops the fields above
    if mute_specials:
        with torch.no_grad():
            model.model.decoder.embed_tokens.weight[ids["<|startoftranscript|>"]:] = 0.0
    model.save_pretrained(folder)
    return folder


def served_whisper(folder: Path) -> Path:
    """:func:`tiny_whisper` as vLLM serves it: d_model 64, a wide init (its transcripts depend on the audio), muted
    special tokens (it speaks letters up to the token budget)."""
    return tiny_whisper(folder, d_model=64, max_target_positions=448, max_length=24, init_std=0.5,
                        mute_specials=True)


def served_qwen2(folder: Path) -> Path:
    """A 2-layer Qwen2 causal LM (hidden 64) with a byte-level BPE tokenizer (256 bytes, no merges); its greedy
    continuations are lower-case letters and spaces."""
    import torch

    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    tok = transformers.Qwen2Tokenizer(vocab=byte_vocab("<|endoftext|>"), merges=[], bos_token=None,
                                      eos_token="<|endoftext|>", unk_token=None, pad_token="<|endoftext|>")
    tok.save_pretrained(folder)
    cfg = transformers.Qwen2Config(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                   num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024,
                                   eos_token_id=0, bos_token_id=0, tie_word_embeddings=False)
    model = transformers.Qwen2ForCausalLM(cfg)
    speakable = [tok.convert_tokens_to_ids(c) for c in "abcdefghijklmnopqrstuvwxyzĠ"]  # Ġ: the byte-level space
    with torch.no_grad():  # other output rows zero: greedy text is ASCII words, which every detokenizer agrees on
        keep = torch.zeros(len(tok), dtype=torch.bool)
        keep[speakable] = True
        model.lm_head.weight[~keep] = 0.0
    model.save_pretrained(folder)
    return folder


def served_qwen2_audio(folder: Path) -> Path:
    """A Qwen2-Audio with a 1-layer audio encoder and a 1-layer Qwen2 (both hidden 64), a byte-level tokenizer with
    the chat specials and Whisper's feature extractor, saved as a Qwen2AudioProcessor. It never ends on its own:
    answers run to the token budget."""
    import torch

    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    tok = transformers.Qwen2Tokenizer(vocab=byte_vocab("<|endoftext|>"), merges=[],
                                      additional_special_tokens=QWEN2_AUDIO_SPECIALS)
    fe = transformers.WhisperFeatureExtractor(feature_size=80)
    transformers.Qwen2AudioProcessor(feature_extractor=fe, tokenizer=tok).save_pretrained(folder)
    cfg = transformers.Qwen2AudioConfig(
        audio_config=dict(model_type="qwen2_audio_encoder", d_model=64, encoder_layers=1, encoder_attention_heads=2,
                          encoder_ffn_dim=64, num_mel_bins=80, init_std=0.5),
        text_config=dict(model_type="qwen2", vocab_size=len(tok), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                         max_position_embeddings=2048, initializer_range=0.5),
        audio_token_index=tok.convert_tokens_to_ids("<|AUDIO|>"))
    model = transformers.Qwen2AudioForConditionalGeneration(cfg)
    letters = [tok.convert_tokens_to_ids(c) for c in "abcdefghijklmnopqrstuvwxyz"]
    with torch.no_grad():  # every output row but the 26 letters is zero: answers are ASCII words that differ per
        keep = torch.zeros(len(tok), dtype=torch.bool)  # question (a wide init lets the audio steer them), never
        keep[letters] = True  # partial UTF-8 bytes that a server's detokenizer would hold back
        model.lm_head.weight[~keep] = 0.0
    model.generation_config.eos_token_id = [tok.convert_tokens_to_ids("<|im_end|>"), 0]
    model.generation_config.pad_token_id = 0
    model.save_pretrained(folder)
    return folder


if __name__ == "__main__":  # build all three under a folder: python tests/served_models.py DIR
    import sys

    root = Path(sys.argv[1])
    for name, build in (("whisper", served_whisper), ("qwen2", served_qwen2), ("qwen2-audio", served_qwen2_audio)):
        print(build(root / name))
