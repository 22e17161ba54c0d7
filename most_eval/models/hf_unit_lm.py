"""``hf-unit-lm``: a causal LM over discrete speech units (GSLM / TWIST / slamkit style), for the spoken-LM tasks.

speech (16 kHz) -> HuBERT (transformers ``HubertModel``) -> ``hidden_states[layer]`` (T, D) -> quantizer -> units (T,)
-> [dedup] -> token ids (``u + offset`` or ``unit_map``) -> [BOS] ids [EOS] -> causal LM -> summed log-probability.

``score_audio`` returns :class:`~most_eval.core.adapter.AudioScore` (summed natural-log probability of the scored tokens,
and their count), so sWUGGY / sBLIMP / StoryCloze apply sum or mean as the task says. Scored tokens: every token after
the first of ``[BOS] units [EOS]`` — without ``bos=true`` the first unit is context only (nothing predicts it).

Inputs, all local paths (``--model-args``):
  lm=DIR         transformers causal-LM folder (OPT, LLaMA, Qwen2, ...), loaded with ``AutoModelForCausalLM``
  encoder=DIR    HuBERT / mHuBERT transformers folder (``AutoModel``); layer L (1-based, fairseq numbering) is
                 ``hidden_states[L]`` (fairseq's layer-L output; index 0 is the input to the first transformer layer)
  quantizer=FILE k-means centroids (K, D) as ``.npy`` or ``.safetensors`` (key ``centroids``): nearest centroid by
                 squared Euclidean distance; or a linear quantizer ``.safetensors`` with ``weight`` (K, D) [+ ``bias``
                 (K,)]: argmax of ``features @ weight.T + bias``. Never a pickle: textlesslib / GSLM / TWIST k-means
                 files (``km.bin``, ``*_km500.bin``) are joblib pickles, and loading one executes code. Convert once,
                 on a machine where you trust the file:
                 ``python -c "import joblib, numpy; numpy.save('km500.npy', joblib.load('km.bin').cluster_centers_)"``
                 (SpiritLM's 3-layer quantizer with a blank output is not this; see reference_impl/speech_encoder.py.)

Recipes (what is stated as fact was read in the public code named; "check your checkpoint" marks the rest):

* GSLM HuBERT units (textlesslib ``DENSE_MODELS``): ``hubert-base-ls960`` at layer 6 (layer 9 for the ``-layer-9``
  variant), k-means 50/100/200 (fairseq ``gslm/hubert/km{50,100,200}/km.bin``) or 500. The "HuBERT layer 6" that is
  often quoted for unit LMs is this model, not TWIST's.

* TWIST (slprl/TWIST-350M, -1.3B, -7B; OPT / LLaMA initialised from text LMs)::

      --model hf-unit-lm --model-args lm=/models/TWIST-1.3B,encoder=/models/mhubert-base-25hz,layer=11,\\
          quantizer=/models/mhubert_base_25hz_L11_km500.npy,dedup=true,normalize=false

  Facts: textlesslib's ``mhubert-base-25hz`` dense model + ``kmeans`` with 500 units, ``deduplicate=True``,
  ``add_bos_eos=False`` (TWIST's inference wrapper); unit ids are shifted by ``lm.config.offset`` (TWIST's
  ``generate_with_offset`` reads that config field), which is what ``offset`` defaults to here; the k-means file slamkit
  downloads for TWIST units is ``twist/speech_tokenizer/mhubert_base_25hz_cp_mls_cv_sp_fisher_L11_km500.bin`` (layer
  11, a joblib pickle: convert as above). textlesslib feeds the raw waveform (``task.normalize`` of mHuBERT-base is
  assumed false: check your checkpoint) and no BOS: ``bos=false`` (default). Check your checkpoint: that the folder's
  ``config.json`` has ``offset`` (else pass ``offset=N``), and that your encoder folder is the 25 Hz mHuBERT converted
  to transformers (slamkit uses ``slprl/mhubert-base-25hz``).

* slamkit (slp-rl/slamkit, "Slamming"; TWIST-style unit LMs, e.g. Qwen2.5 initialised)::

      --model hf-unit-lm --model-args lm=/models/slam-lm,encoder=/models/mhubert-base-25hz,layer=11,\\
          quantizer=/models/mhubert_base_25hz_L11_km500.npy,dedup=true,offset=2,bos=true,eos=true,pad_samples=40

  Facts (``config/tokeniser/unit_hubert_25.yaml``, ``unit_tokeniser.py``, ``hubert_feature_extractor.py``,
  ``unit_lm.py``): ``slprl/mhubert-base-25hz`` (transformers ``HubertModel``), layer 11, the TWIST km500 file above,
  ``dedup: true``; BOS = EOS = id 1, pad 0, unit u -> token ``u + 2``; a sequence is ``<S> units <S>`` and the
  likelihood covers every non-pad token after the first, the closing ``<S>`` included (``bos=true,eos=true`` here,
  when the LM config's bos/eos ids are 1); the raw waveform is zero-padded by 40 samples on each side before HuBERT
  (``pad_samples=40``); StoryCloze / sWUGGY / sBLIMP compare mean NLL by default (the tasks' ``mean`` reduction).
  Check your checkpoint: slamkit saves a ``UnitLM`` wrapper (``model_type: speech_language_model``, weights under
  ``lm.``) that ``AutoModelForCausalLM`` cannot load: save its inner ``.lm`` with ``save_pretrained`` and pass that
  folder, and confirm that its config's ``bos_token_id`` / ``eos_token_id`` are 1.

Batching: HuBERT runs one utterance at a time (HuBERT-base's group-norm feature extractor normalises over the whole
padded time axis, so padding would change the units); the LM runs ``batch_size`` sequences per pass, right-padded with
an attention mask, and equals one-at-a-time scoring up to float rounding.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Sequence

import numpy as np

from most_eval.core.adapter import AudioScore, Model, SampleFailure
from most_eval.core.audio import Audio
from most_eval.core.hf_loading import ModelLoadError, load_pretrained

#: the HuBERT family's input rate, used when the encoder folder has no feature-extractor config
HUBERT_SAMPLE_RATE = 16_000
#: first byte of a pickle (protocol 2+) and of joblib's own container; refused whatever the file is called
PICKLE_MAGIC = (b"\x80", b"ZF")
QUANTIZER_SUFFIXES = (".npy", ".safetensors")
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".bin", ".pt", ".pth")
CONVERT_HINT = ("on a machine where you trust the file, convert it once: python -c \"import joblib, numpy; "
                "numpy.save('km500.npy', joblib.load('km.bin').cluster_centers_)\"")


@dataclass(frozen=True)
class HFUnitLMArgs:
    """``--model-args`` of the unit-LM adapter."""

    lm: str = ""  # causal LM folder (AutoModelForCausalLM)
    encoder: str = ""  # HuBERT / mHuBERT folder (AutoModel); its feature-extractor config, if any, gives the rate
    layer: int = -1  # hidden_states index quantised (= fairseq layer, 1-based); required
    quantizer: str = ""  # .npy / .safetensors: k-means centroids (K, D), or linear weight (K, D) [+ bias]
    dedup: bool = True  # collapse runs of equal units (TWIST, slamkit, SpiritLM all do)
    offset: int | None = None  # unit u -> token u + offset; None: the LM config's `offset` (TWIST) else 0
    unit_map: str = ""  # JSON file: {"unit": token_id, ...} or [token_id, ...]; excludes offset
    bos: bool = False  # prepend the LM's BOS, so that the first unit is scored too
    eos: bool = False  # append the LM's EOS and score it (slamkit)
    normalize: bool | None = None  # zero-mean unit-variance waveform; None: the encoder folder's do_normalize
    pad_samples: int = 0  # zero samples added on each side of the waveform before HuBERT (slamkit: 40)
    dtype: str = "float32"  # float32, float16 or bfloat16 (LM and encoder)
    batch_size: int = 8  # LM sequences per forward pass
    trust_remote_code: bool = False  # only when you trust the LM folder's code


# -----------------------------------------------------------------------------------------------------------------
# Quantizers: features (T, D) -> unit ids (T,)


class Quantizer:
    """Nearest centroid (``kind="kmeans"``) or argmax of a linear map (``kind="linear"``) over D-dim features."""

    def __init__(self, kind: str, weight: np.ndarray, bias: np.ndarray | None = None):
        self.kind = kind
        self.weight = np.asarray(weight, dtype=np.float64)  # (K, D): centroids, or linear rows
        self.bias = None if bias is None else np.asarray(bias, dtype=np.float64).reshape(-1)  # (K,)
        self.num_units, self.dim = self.weight.shape

    def __call__(self, features) -> "np.ndarray":
        """(T, D) torch tensor -> (T,) int64 unit ids; computed in float64 so that near-ties do not flip."""
        import torch

        x = features.detach().to("cpu", torch.float64)  # (T, D)
        w = torch.from_numpy(self.weight)  # (K, D)
        if self.kind == "kmeans":
            dist = x.pow(2).sum(-1, keepdim=True) - 2 * x @ w.T + w.pow(2).sum(-1)  # (T, K) squared distances
            return dist.argmin(-1).numpy()
        logits = x @ w.T + (0 if self.bias is None else torch.from_numpy(self.bias))  # (T, K)
        return logits.argmax(-1).numpy()


def load_quantizer(path: str | Path) -> Quantizer:
    """A quantizer from ``.npy`` (centroids) or ``.safetensors`` (``centroids``, or ``weight`` [+ ``bias``]) without
    unpickling anything; any other file (joblib / pickle k-means included) is a one-line :class:`ModelLoadError`."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelLoadError(f"{path}: quantizer file not found")
    with open(path, "rb") as fh:
        head = fh.read(2)
    refusal = (f"{path}: quantizer looks like a pickle/joblib file, which is never loaded (unpickling executes code); "
               f"save its centroids as .npy or .safetensors (key 'centroids'): {CONVERT_HINT}")
    looks_pickled = head[:1] == PICKLE_MAGIC[0] or head == PICKLE_MAGIC[1]
    if path.suffix not in QUANTIZER_SUFFIXES and (looks_pickled or path.suffix in PICKLE_SUFFIXES):
        raise ModelLoadError(refusal)
    if path.suffix not in QUANTIZER_SUFFIXES:
        raise ModelLoadError(f"{path}: quantizer must be .npy or .safetensors (k-means centroids, or a linear "
                             f"quantizer's weight [+ bias]), got {path.suffix or 'no suffix'}")
    if path.suffix == ".npy":
        try:
            centroids = np.load(path, allow_pickle=False)
        except ValueError as exc:  # an object array is stored pickled
            raise ModelLoadError(refusal if "pickle" in str(exc) else f"{path}: cannot read .npy ({exc})") from None
        return _checked(path, Quantizer("kmeans", centroids))
    from safetensors.numpy import load_file

    try:
        tensors = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types with long texts
        if looks_pickled:  # (a safetensors header length can start with 0x80 too: only checked on failure)
            raise ModelLoadError(refusal) from None
        raise ModelLoadError(f"{path}: not a safetensors file ({str(exc).splitlines()[0][:160]})") from None
    if "centroids" in tensors:
        return _checked(path, Quantizer("kmeans", tensors["centroids"]))
    if "weight" in tensors:
        bias = tensors.get("bias")
        quantizer = _checked(path, Quantizer("linear", tensors["weight"], bias))
        if bias is not None and bias.size != quantizer.num_units:
            raise ModelLoadError(f"{path}: bias has {bias.size} values for {quantizer.num_units} weight rows")
        return quantizer
    raise ModelLoadError(f"{path}: expected a 'centroids' (k-means) or 'weight' (+ 'bias', linear) tensor, "
                         f"found {sorted(tensors)}")


def _checked(path: Path, quantizer: Quantizer) -> Quantizer:
    if quantizer.weight.ndim != 2 or not np.isfinite(quantizer.weight).all():
        raise ModelLoadError(f"{path}: quantizer must be a finite (K, D) matrix")
    return quantizer


def dedup_runs(units: np.ndarray) -> np.ndarray:
    """Collapse runs of equal consecutive units: [5, 5, 3, 3, 5] -> [5, 3, 5] (SpiritLM's ``hubert_dedup``)."""
    units = np.asarray(units)
    if units.size == 0:
        return units
    keep = np.ones(units.shape, dtype=bool)
    keep[1:] = units[1:] != units[:-1]
    return units[keep]


# -----------------------------------------------------------------------------------------------------------------
# The adapter


class HFUnitLM(Model):
    name = "hf-unit-lm"
    description = ("unit LM: HuBERT layer features -> k-means/linear units -> transformers causal LM "
                   "(TWIST, slamkit style; score_audio)")
    Args = HFUnitLMArgs

    def __init__(self, args=None, **kw):
        super().__init__(args, **kw)
        a = self.args
        missing = [k for k in ("lm", "encoder", "quantizer") if not getattr(a, k)]
        if missing:
            raise ValueError(f"hf-unit-lm needs {', '.join(f'{k}=' for k in missing)} in --model-args")
        if a.layer < 0:
            raise ValueError("hf-unit-lm needs layer=N (the encoder's hidden_states index to quantise, e.g. 11)")
        if a.unit_map and a.offset is not None:
            raise ValueError("hf-unit-lm: give offset= or unit_map=, not both")
        if a.batch_size < 1 or a.pad_samples < 0:
            raise ValueError("hf-unit-lm: batch_size must be at least 1 and pad_samples at least 0")
        # load everything now: a bad path or a mismatched quantizer fails before any task runs
        self.quantizer = load_quantizer(a.quantizer)
        self.encoder, self.lm
        n_layers = self.encoder.config.num_hidden_layers
        if a.layer > n_layers:
            raise ValueError(f"hf-unit-lm: layer={a.layer} but the encoder has {n_layers} layers "
                             f"(hidden_states 0..{n_layers})")
        if self.quantizer.dim != self.encoder.config.hidden_size:
            raise ModelLoadError(f"{a.quantizer}: quantizer dimension {self.quantizer.dim} != encoder hidden size "
                                 f"{self.encoder.config.hidden_size}")
        self.unit_to_token = self._unit_to_token()  # (K,) int64
        self.bos_id = self._special("bos") if a.bos else None
        self.eos_id = self._special("eos") if a.eos else None

    # ---- loading ------------------------------------------------------------------------------------------
    @cached_property
    def encoder(self):
        """The HuBERT encoder in eval mode; sets ``sample_rate`` from the folder's feature extractor (else 16 kHz)."""
        import torch
        import transformers

        model = load_pretrained(self.args.encoder, transformers.AutoModel.from_pretrained, "speech encoder",
                                dtype=getattr(torch, self.args.dtype))
        fe = self._feature_extractor_config()
        self.sample_rate = int(fe.get("sampling_rate", HUBERT_SAMPLE_RATE))
        self.normalize = bool(fe.get("do_normalize", False)) if self.args.normalize is None else self.args.normalize
        return model.to(self.device).eval()

    def _feature_extractor_config(self) -> dict:
        path = Path(self.args.encoder).expanduser() / "preprocessor_config.json"
        try:
            return json.loads(path.read_text()) if path.is_file() else {}
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelLoadError(f"{path}: unreadable feature-extractor config ({exc})") from None

    @cached_property
    def lm(self):
        """The causal LM in eval mode on the chosen device."""
        import torch
        import transformers

        model = load_pretrained(self.args.lm, transformers.AutoModelForCausalLM.from_pretrained, "causal LM",
                                dtype=getattr(torch, self.args.dtype), trust_remote_code=self.args.trust_remote_code)
        return model.to(self.device).eval()

    @property
    def _lm_config(self):
        return getattr(self.lm.config, "text_config", None) or self.lm.config

    @property
    def vocab_size(self) -> int:
        """Rows of the LM's output layer (the logits' last dimension)."""
        out = self.lm.get_output_embeddings()
        return int(out.weight.shape[0]) if out is not None else int(self._lm_config.vocab_size)

    @property
    def offset(self) -> int | None:
        """The unit -> token shift in use (None with ``unit_map``)."""
        if self.args.unit_map:
            return None
        if self.args.offset is not None:
            return self.args.offset
        return int(getattr(self._lm_config, "offset", None) or 0)  # TWIST stores it in config.json

    def _unit_to_token(self) -> np.ndarray:
        k = self.quantizer.num_units
        if self.args.unit_map:
            path = Path(self.args.unit_map).expanduser()
            try:
                raw = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise ModelLoadError(f"{path}: cannot read unit_map JSON ({str(exc).splitlines()[0]})") from None
            items = dict(enumerate(raw)) if isinstance(raw, list) else raw
            try:
                table = {int(u): int(t) for u, t in items.items()}
            except (TypeError, ValueError, AttributeError):
                raise ModelLoadError(f"{path}: unit_map must map unit numbers to token ids") from None
            absent = [u for u in range(k) if u not in table]
            if absent:
                raise ModelLoadError(f"{path}: unit_map lacks {len(absent)} of the quantizer's {k} units "
                                     f"(first: {absent[0]})")
            ids = np.array([table[u] for u in range(k)], dtype=np.int64)
            where = str(path)
        else:
            ids = np.arange(k, dtype=np.int64) + self.offset
            where = f"offset={self.offset}"
        if ids.min() < 0 or ids.max() >= self.vocab_size:
            raise ModelLoadError(f"{where}: unit tokens span ids {ids.min()}..{ids.max()}, outside the LM's "
                                 f"vocabulary of {self.vocab_size}")
        return ids

    def _special(self, which: str) -> int:
        value = getattr(self._lm_config, f"{which}_token_id", None)
        if value is None:
            value = getattr(getattr(self.lm, "generation_config", None), f"{which}_token_id", None)
        if isinstance(value, (list, tuple)):
            value = value[0] if value else None
        if value is None:
            raise ModelLoadError(f"{self.args.lm}: {which}=true but the LM config names no {which}_token_id")
        return int(value)

    def deterministic(self, capability: str) -> bool:
        """Scores only: a forward pass, no sampling."""
        return True

    def identity(self) -> dict:
        a = self.args
        paths = {k: str(Path(v).expanduser().resolve()) for k in ("lm", "encoder", "quantizer", "unit_map")
                 if (v := getattr(a, k))}
        return {**super().identity(), "paths": paths, "offset": self.offset, "quantizer_kind": self.quantizer.kind,
                "num_units": self.quantizer.num_units, "sample_rate": self.sample_rate, "normalize": self.normalize,
                "bos_id": self.bos_id, "eos_id": self.eos_id}

    # ---- speech -> units -> tokens ---------------------------------------------------------------------------
    def features(self, audio: Audio):
        """HuBERT ``hidden_states[layer]`` of one utterance, (T, D)."""
        import torch

        x = np.asarray(audio.samples, dtype=np.float32)
        if self.normalize:  # as transformers' Wav2Vec2FeatureExtractor (zero mean, unit variance)
            x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
        if self.args.pad_samples:
            x = np.pad(x, self.args.pad_samples)
        wav = torch.from_numpy(np.ascontiguousarray(x))[None].to(self.device, self.encoder.dtype)  # (1, S)
        with torch.inference_mode():
            out = self.encoder(wav, output_hidden_states=True)
        return out.hidden_states[self.args.layer][0]  # (T, D)

    def units(self, audio: Audio) -> np.ndarray:
        """Unit ids of one utterance (deduplicated when ``dedup``), (T',) int64."""
        units = self.quantizer(self.features(audio))
        return dedup_runs(units) if self.args.dedup else units

    def token_ids(self, audio: Audio) -> list[int]:
        """The LM's input for one utterance: [BOS] unit tokens [EOS]."""
        ids = self.unit_to_token[self.units(audio)].tolist()
        return ([self.bos_id] if self.bos_id is not None else []) + ids + (
            [self.eos_id] if self.eos_id is not None else [])

    # ---- scoring ----------------------------------------------------------------------------------------------
    def score_audio(self, audios: Sequence[Audio]) -> list[AudioScore | SampleFailure]:
        """Per utterance: (summed natural-log probability of each token after the first of [BOS] units [EOS], given
        the tokens before it; the number of such tokens). Utterances too short for the encoder, or with nothing to
        score, or longer than the LM's context, are :class:`SampleFailure` slots."""
        out: list[AudioScore | SampleFailure | None] = [None] * len(audios)
        todo = []
        limit = getattr(self._lm_config, "max_position_embeddings", None)
        for i, audio in enumerate(audios):
            try:
                ids = self.token_ids(audio)
            except RuntimeError as exc:  # e.g. fewer samples than HuBERT's receptive field
                out[i] = SampleFailure(f"encoder failed: {str(exc).splitlines()[0][:200]}")
                continue
            if len(ids) < 2:
                out[i] = SampleFailure(f"{len(ids)} token(s): nothing to score (audio too short?)")
            elif limit is not None and len(ids) > limit:
                out[i] = SampleFailure(f"{len(ids)} tokens exceed the LM's context of {limit}")
            else:
                todo.append((i, ids))
        todo.sort(key=lambda t: -len(t[1]))  # similar lengths share a batch
        for start in range(0, len(todo), self.args.batch_size):
            batch = todo[start:start + self.args.batch_size]
            for (i, ids), score in zip(batch, self._score_batch([ids for _, ids in batch])):
                out[i] = score
        return out

    def _score_batch(self, seqs: list[list[int]]) -> list[AudioScore]:
        import torch

        width = max(len(s) for s in seqs)
        ids = torch.zeros((len(seqs), width), dtype=torch.long)  # (B, T), right-padded with id 0 (masked)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)  # (B, T), 1 = real token
        for row, seq in enumerate(seqs):
            ids[row, :len(seq)] = torch.tensor(seq)
            mask[row, :len(seq)] = 1
        with torch.inference_mode():
            logits = self.lm(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits  # (B, T, V)
            scores = []
            for row, seq in enumerate(seqs):
                n = len(seq) - 1
                logp = torch.log_softmax(logits[row, :n].float(), dim=-1)  # (n, V): predictions of tokens 1..n
                target = ids[row, 1:n + 1].to(logp.device)
                scores.append(AudioScore(float(logp.gather(1, target[:, None]).sum().item()), n))
        return scores
