"""``openai-api``: any server that speaks the OpenAI HTTP API (vLLM, and others) as a model adapter.

``--model-args base_url=http://127.0.0.1:8000,model=NAME[,api_key_env=OPENAI_API_KEY][,tokenizer=DIR]``. The key
itself is never an argument (it would end up in shell history and results): ``api_key_env`` names the environment
variable that holds it, sent as ``Authorization: Bearer <key>``. The HTTP side (timeouts, retries, one-line
reasons) is :mod:`most_eval.models.openai_client`.

==============  ===========================================  =====================================================
capability      endpoint                                     request / answer
==============  ===========================================  =====================================================
transcribe      ``POST /v1/audio/transcriptions``            multipart: ``file`` (16-bit WAV), ``model``,
                                                             ``response_format=json``, ``temperature`` ->
                                                             ``{"text": ...}``
synthesize      ``POST /v1/audio/speech``                    JSON ``{model, input, voice, response_format: wav}``
                                                             -> WAV bytes
respond         ``POST /v1/chat/completions``                user message with an ``input_audio`` part (base64
                                                             WAV); speech answers ask ``modalities: [text, audio]``
                                                             and read ``choices[0].message.audio.data``
score_text      ``POST /v1/completions``                     ``prompt`` = token ids, ``max_tokens: 1``,
                                                             ``prompt_logprobs: 0`` (vLLM) -> each prompt token's
                                                             log-probability and rank (greedy = rank 1)
generate_text   ``POST /v1/completions``                     ``prompt`` = token ids, ``max_tokens``, greedy; the
                                                             answer is cut at the request's stop strings here
==============  ===========================================  =====================================================

Text scoring and generation need ``tokenizer=DIR``, a local copy of the served model's tokenizer (as lm-eval's
``local-completions`` takes ``tokenizer=``): requests are encoded here exactly as lm-eval encodes them for an
in-process model and sent as token ids, so served and in-process log-likelihoods agree. The window is the server's
``max_model_len`` less 2 (one token for the answer the API insists on, one for the shifted prompt), unless
``max_length=`` says otherwise.

Speech is not scored over HTTP (``score_audio``): a served speech LM takes audio as continuous embeddings, and the
``prompt_logprobs`` vLLM returns for a chat with ``input_audio`` are those of the repeated audio placeholder
token, not of the speech.

At start the adapter reads ``GET /v1/models`` (and vLLM's ``GET /version``): a model name the server does not list
is refused before any request, naming the ones it does list; the served model's entry and the server's version go to
results.json (``model.facts``). Each batch is sent with at most ``concurrency`` requests in flight; a request that
fails becomes that sample's :class:`~most_eval.core.adapter.SampleFailure` with a one-line reason. Outputs come back
in input order.

The speech API has no voice cloning: a TTS speaker prompt is not sent, every utterance uses ``voice``.
References: https://platform.openai.com/docs/api-reference/audio, https://docs.vllm.ai/en/latest/serving/
openai_compatible_server.html
"""

from __future__ import annotations

import base64
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Sequence

from most_eval.core.adapter import Model, SampleFailure
from most_eval.core.audio import Audio
from most_eval.core.fingerprints import path_stamp
from most_eval.models.causal_text_lm import CausalTextLM
from most_eval.models.openai_client import ERROR_SNIPPET, Client, RequestFailed, decode_audio, multipart, parse_json, \
    server_facts, wav_bytes

TRANSCRIPTIONS = "/v1/audio/transcriptions"
SPEECH = "/v1/audio/speech"
CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
#: tokens of the server's max_model_len that a scoring request cannot use: the one answer token the API asks for,
#: and the shift between a window of ``max_length`` inputs and the ``max_length + 1`` prompt tokens it scores
SCORING_RESERVE = 2


@dataclass(frozen=True)
class OpenAIAPIArgs:
    """``--model-args`` of the OpenAI-compatible API adapter."""

    base_url: str = ""  # server root, e.g. http://127.0.0.1:8000 (a trailing /v1 is accepted)
    model: str = ""  # model name the server serves (sent as "model" in every request)
    api_key_env: str = ""  # name of the environment variable holding the API key ("" = no Authorization header)
    concurrency: int = 8  # requests in flight at once within a batch (--batch-size caps it: keep it >= this)
    timeout: float = 120.0  # seconds: connect timeout, and the longest the server may stay silent while answering
    retries: int = 3  # further attempts after a 429, a 5xx or a dropped connection (timeouts are not retried)
    backoff: float = 1.0  # seconds before the first retry, doubling each time; a Retry-After header wins
    max_tokens: int = 512  # respond: longest answer, in tokens
    temperature: float = 0.0  # transcribe and respond: sampling temperature (0 = greedy, as evaluation wants)
    voice: str = "alloy"  # synthesize, and respond with speech answers: the server's voice name
    prompt: str = ""  # transcribe: text prompt sent with the audio ("" = none)
    language: str = ""  # transcribe: ISO-639-1 language hint, e.g. "en" ("" = let the server detect)
    instruction: str = ""  # respond: text sent before the audio in the user message ("" = audio only)
    system_prompt: str = ""  # respond: system message ("" = none)
    tokenizer: str = ""  # score_text / generate_text: local folder of the served model's tokenizer ("" = no text
    #: tasks); requests are encoded with it as lm-eval encodes them and sent as token ids
    max_length: int = 0  # score_text / generate_text: tokens per window (0 = the server's max_model_len - 2)

    def __post_init__(self):
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {self.concurrency}")
        if self.timeout <= 0:
            raise ValueError(f"timeout must be positive seconds, got {self.timeout}")
        if self.retries < 0 or self.backoff < 0:
            raise ValueError("retries and backoff must not be negative")
        if self.max_length < 0:
            raise ValueError(f"max_length must not be negative, got {self.max_length}")


# ---- the model -------------------------------------------------------------------------------------------------------
class OpenAIAPIModel(CausalTextLM, Model):
    """A model behind an OpenAI-compatible server: every capability is an HTTP request (see the module docstring);
    text scoring encodes requests here, with the served model's tokenizer, as :class:`CausalTextLM` does in process."""

    name = "openai-api"
    description = ("a model behind an OpenAI-compatible HTTP server (vLLM, ...): transcribe, synthesize, respond; "
                   "score and generate text with tokenizer=")
    Args = OpenAIAPIArgs

    def __init__(self, args=None, **kw):
        super().__init__(args, **kw)
        a = self.args
        if not a.base_url or not a.model:
            raise ValueError(f"{self.name} needs base_url=<http://host:port> and model=<name> in --model-args")
        api_key = None
        if a.api_key_env:
            api_key = os.environ.get(a.api_key_env)
            if not api_key:
                raise ValueError(f"api_key_env={a.api_key_env}: that environment variable is not set or empty")
        self.client = Client(a.base_url, api_key, a.timeout, a.retries, a.backoff)
        self.server = server_facts(self.client, a.model)  # an unlisted model name stops here, before any request
        if a.tokenizer:
            from transformers import AutoTokenizer

            from most_eval.core.hf_loading import load_pretrained

            self.tokenizer = load_pretrained(a.tokenizer, AutoTokenizer.from_pretrained, "tokenizer",
                                             expect="tokenizer_config.json")
            served = self.server.get("max_model_len")
            self.text_max_length_override = a.max_length or (int(served) - SCORING_RESERVE if served else 0)

    def supports(self, task: str, capability: str) -> bool:
        """Text scoring and generation only with ``tokenizer=`` (requests are encoded here)."""
        if capability in ("score_text", "generate_text") and not self.args.tokenizer:
            return False
        return super().supports(task, capability)

    def facts(self) -> dict:
        """The server's own account: the served model's ``/v1/models`` entry and the server's version."""
        return dict(self.server)

    def deterministic(self, capability: str) -> bool:
        """Text at temperature 0 is the server's greedy decoding; speech from a server's voice may be sampled
        whatever the temperature, so ``synthesize`` runs once per seed. A chat at temperature > 0 sends the seed as
        the request's ``seed`` (vLLM and OpenAI honour it)."""
        return capability != "synthesize" and self.args.temperature == 0

    def identity(self) -> dict:
        """Server, model name and the arguments that shape outputs; not the key, nor its variable, nor the
        concurrency / timeout / retry settings (changing those reuses cached outputs)."""
        a = self.args
        shaping = ("max_tokens", "temperature", "voice", "prompt", "language", "instruction", "system_prompt",
                   "tokenizer", "max_length")
        identity = {"name": self.name, "base_url": a.base_url.rstrip("/"), "model": a.model,
                    "args": {k: getattr(a, k) for k in shaping}}
        if a.tokenizer:  # the window the server's max_model_len gives: a restart with another one rescores
            identity["window"] = self.text_max_length_override
        return identity

    def file_stamps(self) -> dict:
        """The local tokenizer's stamp only: the weights live on the server, and a local file named like the model
        says nothing about them."""
        stamp = path_stamp(self.args.tokenizer) if self.args.tokenizer else None
        return {"tokenizer": stamp} if stamp is not None else {}

    @property
    def max_length(self) -> int:
        """Tokens per scoring window: ``max_length=``, else the server's ``max_model_len`` less 2. Without
        ``tokenizer=`` there is no text path (AttributeError, so ``hasattr`` says so)."""
        if not self.args.tokenizer:
            raise AttributeError(f"{self.name} scores text only with tokenizer=<local tokenizer folder>")
        if not self.text_max_length_override:
            why = self.server.get("unavailable") or "the server reported no max_model_len"
            raise ValueError(f"{self.name}: no scoring window ({why}); give max_length= in --model-args")
        return self.text_max_length_override

    def _map(self, fn: Callable, items: Sequence) -> list:
        """``fn`` over ``items`` with at most ``concurrency`` in flight, in input order; a failure -> SampleFailure."""
        def guarded(item):
            try:
                return fn(item)
            except RequestFailed as exc:
                return SampleFailure(str(exc))
            except Exception as exc:  # a malformed answer fails its sample, not the batch
                first = str(exc).splitlines()[0][:ERROR_SNIPPET] if str(exc) else ""
                return SampleFailure(f"{self.name}: {type(exc).__name__}: {first}")

        if not items:
            return []
        with ThreadPoolExecutor(max_workers=min(self.args.concurrency, len(items))) as pool:
            return list(pool.map(guarded, items))

    def _map_all(self, fn: Callable, items: list) -> list:
        """``fn`` over ``items`` with at most ``concurrency`` in flight, in input order, for the text path (lm-eval
        has no per-request failure): the first failure cancels every request not yet sent and is raised at once,
        instead of after the whole queue has been tried and retried."""
        pool = ThreadPoolExecutor(max_workers=min(self.args.concurrency, len(items)))
        futures = [pool.submit(fn, item) for item in items]
        try:
            return [f.result() for f in futures]
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            pool.shutdown(wait=True)

    # ---- capabilities --------------------------------------------------------------------------------------------
    def transcribe(self, audios: Sequence[Audio]) -> list[str]:
        fields = {"model": self.args.model, "response_format": "json", "temperature": str(self.args.temperature)}
        if self.args.prompt:
            fields["prompt"] = self.args.prompt
        if self.args.language:
            fields["language"] = self.args.language

        def one(audio: Audio):
            body, ctype = multipart(fields, {"file": ("audio.wav", "audio/wav", wav_bytes(audio))})
            obj = parse_json(self.client.post(TRANSCRIPTIONS, body, ctype), TRANSCRIPTIONS)
            if not isinstance(obj.get("text"), str):
                return SampleFailure(f"POST {TRANSCRIPTIONS}: answer has no 'text' field")
            return obj["text"].strip()

        return self._map(one, list(audios))

    def synthesize(self, texts: Sequence[str], prompts=None) -> list[Audio]:
        def one(text: str):
            payload = {"model": self.args.model, "input": text, "voice": self.args.voice, "response_format": "wav"}
            resp = self.client.post_json(SPEECH, payload)
            try:
                return decode_audio(resp.body)
            except Exception as exc:
                return SampleFailure(f"POST {SPEECH}: answer is not decodable audio "
                                     f"(content-type {resp.headers.get('content-type', '?')}): "
                                     f"{str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__}")

        return self._map(one, list(texts))

    def respond(self, audios: Sequence[Audio], modality: str = "text") -> list[str] | list[Audio]:
        a = self.args
        speech = modality == "speech"

        def one(audio: Audio):
            content = [{"type": "text", "text": a.instruction}] if a.instruction else []
            content.append({"type": "input_audio",
                            "input_audio": {"data": base64.b64encode(wav_bytes(audio)).decode(), "format": "wav"}})
            messages = [{"role": "system", "content": a.system_prompt}] if a.system_prompt else []
            messages.append({"role": "user", "content": content})
            payload = {"model": a.model, "messages": messages, "max_tokens": a.max_tokens,
                       "temperature": a.temperature}
            if a.temperature > 0:  # sampled: the seed makes the answer repeatable where the server honours it
                payload["seed"] = self.seed
            if speech:
                payload["modalities"] = ["text", "audio"]
                payload["audio"] = {"voice": a.voice, "format": "wav"}
            obj = parse_json(self.client.post_json(CHAT, payload), CHAT)
            try:
                message = obj["choices"][0]["message"]
            except (KeyError, IndexError, TypeError):
                return SampleFailure(f"POST {CHAT}: answer has no choices[0].message")
            if speech:
                data = (message.get("audio") or {}).get("data") if isinstance(message, dict) else None
                if not data:
                    return SampleFailure(f"POST {CHAT}: the server gave no audio (choices[0].message.audio.data "
                                         f"missing; does it serve modalities=[text, audio]?)")
                return decode_audio(base64.b64decode(data))
            text = message.get("content") if isinstance(message, dict) else None
            if isinstance(text, list):  # some servers answer with content parts
                text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
            if not isinstance(text, str):
                return SampleFailure(f"POST {CHAT}: the server gave no text answer")
            return text.strip()

        return self._map(one, list(audios))

    def score_tokens(self, contexts: Sequence[Sequence[int]], continuations: Sequence[Sequence[int]]
                     ) -> list[tuple[float, bool]]:
        """(summed natural-log probability of each continuation's tokens given its context's, whether each is the
        server's top-1), from ``prompt_logprobs`` of ``POST /v1/completions`` over the last ``max_length + 1``
        tokens of context + continuation (the window :meth:`CausalTextLM.score_tokens` reads). A failed request
        raises: lm-eval has no per-request failure."""
        limit = self.max_length + 1

        def one(pair):
            ctx, cont = pair
            if not cont:
                return 0.0, True
            if len(cont) > self.max_length:
                raise ValueError(f"continuation of {len(cont)} tokens exceeds max_length {self.max_length}")
            prompt = (list(ctx) + list(cont))[-limit:]
            payload = {"model": self.args.model, "prompt": prompt, "max_tokens": 1, "temperature": 0.0,
                       "prompt_logprobs": 0}
            obj = parse_json(self.client.post_json(COMPLETIONS, payload), COMPLETIONS)
            return continuation_logprob(obj, prompt, len(cont))

        pairs = list(zip(contexts, continuations))
        if not pairs:
            return []
        return self._map_all(one, pairs)

    def generate_text(self, prompts: Sequence[str], until: Sequence[Sequence[str]], max_tokens: int) -> list[str]:
        """Greedy continuation of each prompt, encoded and left-truncated as :meth:`CausalTextLM.generate_text`
        does, sent as token ids; the answer is cut at the first of its stop strings here, as in process."""
        keep = self.max_length - max_tokens
        if keep < 1:
            raise ValueError(f"cannot generate {max_tokens} tokens within max_length {self.max_length}")

        def one(item):
            prompt, stops = item
            ids = self._encode(prompt)[-keep:] or [self.prefix_token_id]
            payload = {"model": self.args.model, "prompt": ids, "max_tokens": max_tokens, "temperature": 0.0}
            obj = parse_json(self.client.post_json(COMPLETIONS, payload), COMPLETIONS)
            try:
                text = obj["choices"][0]["text"]
            except (KeyError, IndexError, TypeError):
                raise RequestFailed(f"POST {COMPLETIONS}: answer has no choices[0].text") from None
            if not isinstance(text, str):
                raise RequestFailed(f"POST {COMPLETIONS}: choices[0].text is not a string")
            for stop in stops:
                if stop and stop in text:
                    text = text[:text.index(stop)]
            return text

        items = list(zip(prompts, until))
        if not items:
            return []
        return self._map_all(one, items)


def continuation_logprob(answer: dict, prompt: Sequence[int], n_scored: int) -> tuple[float, bool]:
    """(sum, all top-1) over the last ``n_scored`` prompt tokens of a completions answer with ``prompt_logprobs``:
    per position vLLM gives ``{token id: {"logprob", "rank"}}`` for the prompt's own token (rank 1 = the greedy
    choice). RequestFailed when the answer lacks them or names other tokens (a server that ignores the option)."""
    where = f"POST {COMPLETIONS}"
    per_token = answer.get("prompt_logprobs")
    if per_token is None:
        choices = answer.get("choices") or [{}]
        per_token = choices[0].get("prompt_logprobs") if isinstance(choices[0], dict) else None
    if not isinstance(per_token, list) or len(per_token) != len(prompt):
        raise RequestFailed(f"{where}: the answer has no prompt_logprobs for the {len(prompt)} prompt tokens "
                            f"(does the server support prompt_logprobs? vLLM does)")
    total, greedy = 0.0, True
    for position in range(len(prompt) - n_scored, len(prompt)):
        entry = per_token[position]
        info = entry.get(str(prompt[position])) if isinstance(entry, dict) else None
        if not isinstance(info, dict) or not isinstance(info.get("logprob"), (int, float)):
            raise RequestFailed(f"{where}: prompt_logprobs[{position}] has no log-probability of token "
                                f"{prompt[position]}")
        total += float(info["logprob"])
        greedy = greedy and info.get("rank") == 1
    return total, greedy
