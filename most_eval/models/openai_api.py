"""``openai-api``: any server that speaks the OpenAI HTTP API (vLLM, and others) as a model adapter.

``--model-args base_url=http://127.0.0.1:8000,model=NAME[,api_key_env=OPENAI_API_KEY]``. The key itself is never
an argument (it would end up in shell history and results): ``api_key_env`` names the environment variable that
holds it, sent as ``Authorization: Bearer <key>``. Only ``base_url`` is ever contacted: no proxies from the
environment, no redirects followed.

==============  ===========================================  =====================================================
capability      endpoint                                     request / answer
==============  ===========================================  =====================================================
transcribe      ``POST /v1/audio/transcriptions``            multipart: ``file`` (16-bit WAV), ``model``,
                                                             ``response_format=json`` -> ``{"text": ...}``
synthesize      ``POST /v1/audio/speech``                    JSON ``{model, input, voice, response_format: wav}``
                                                             -> WAV bytes
respond         ``POST /v1/chat/completions``                user message with an ``input_audio`` part (base64
                                                             WAV); speech answers ask ``modalities: [text, audio]``
                                                             and read ``choices[0].message.audio.data``
==============  ===========================================  =====================================================

Each batch is sent with at most ``concurrency`` requests in flight. A 429 or 5xx answer (or a dropped connection)
is retried with exponential backoff, honouring ``Retry-After``; a request that still fails, or times out, becomes
that sample's :class:`~most_eval.core.adapter.SampleFailure` with a one-line reason — never an exception that fails the
batch. Outputs come back in input order.

The speech API has no voice cloning: a TTS speaker prompt is not sent, every utterance uses ``voice``.
References: https://platform.openai.com/docs/api-reference/audio, https://docs.vllm.ai/en/latest/serving/
openai_compatible_server.html
"""

from __future__ import annotations

import base64
import email.utils
import http.client
import io
import json
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Sequence
from urllib.parse import urlsplit

import numpy as np
import soundfile as sf

from most_eval.core.adapter import Model, SampleFailure
from most_eval.core.audio import Audio, to_mono_float32
from most_eval.core.errors import MostEvalError

TRANSCRIPTIONS = "/v1/audio/transcriptions"
SPEECH = "/v1/audio/speech"
CHAT = "/v1/chat/completions"

MAX_WAIT_S = 60.0  # longest single wait between attempts, whatever Retry-After or the backoff says
ERROR_SNIPPET = 160  # characters of a server's error body kept in the failure reason


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
    temperature: float = 0.0  # respond: sampling temperature (0 = greedy, as evaluation wants)
    voice: str = "alloy"  # synthesize, and respond with speech answers: the server's voice name
    prompt: str = ""  # transcribe: text prompt sent with the audio ("" = none)
    language: str = ""  # transcribe: ISO-639-1 language hint, e.g. "en" ("" = let the server detect)
    instruction: str = ""  # respond: text sent before the audio in the user message ("" = audio only)
    system_prompt: str = ""  # respond: system message ("" = none)

    def __post_init__(self):
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {self.concurrency}")
        if self.timeout <= 0:
            raise ValueError(f"timeout must be positive seconds, got {self.timeout}")
        if self.retries < 0 or self.backoff < 0:
            raise ValueError("retries and backoff must not be negative")


# ---- small parts: audio <-> WAV bytes, multipart body, error text ------------------------------------------------
def wav_bytes(audio: Audio) -> bytes:
    """16-bit PCM WAV of ``audio`` (clipped to [-1, 1]), as a server expects an uploaded file."""
    buf = io.BytesIO()
    sf.write(buf, np.clip(audio.samples, -1.0, 1.0), audio.sample_rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def decode_audio(data: bytes) -> Audio:
    """A WAV (or any format libsndfile reads) from a server, as mono float32 at its own rate."""
    samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    if samples.shape[0] == 0:
        raise ValueError("audio is empty (0 samples)")
    return Audio(to_mono_float32(samples), int(rate))


def multipart(fields: dict[str, str], files: dict[str, tuple[str, str, bytes]]) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body and its content type; ``files``: name -> (filename, content type, bytes)."""
    boundary = f"most-eval-{uuid.uuid4().hex}"
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (filename, ctype, data) in files.items():
        head = (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                f"Content-Type: {ctype}\r\n\r\n")
        parts.append(head.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def error_text(body: bytes) -> str:
    """One line from an error body: the ``error.message`` of OpenAI/vLLM JSON errors, else the text itself."""
    text = body.decode("utf-8", "replace")
    try:
        obj = json.loads(text)
        err = obj.get("error", obj) if isinstance(obj, dict) else obj
        text = str(err.get("message", err)) if isinstance(err, dict) else str(err)
    except (json.JSONDecodeError, AttributeError):
        pass
    text = " ".join(text.split())
    return text[:ERROR_SNIPPET] + ("..." if len(text) > ERROR_SNIPPET else "")


def retry_after(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _retryable(status: int) -> bool:
    """Too many requests, or a server-side error: worth another attempt."""
    return status == 429 or 500 <= status <= 599


class RequestFailed(MostEvalError):
    """A request with no usable answer; ``str()`` is the one-line reason that becomes a SampleFailure."""


@dataclass(frozen=True)
class Response:
    """A server's answer, read in full."""

    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes


# ---- the HTTP client -----------------------------------------------------------------------------------------------
class Client:
    """POSTs to one server with timeouts and retries; one connection per request, so it is safe across threads."""

    def __init__(self, base_url: str, api_key: str | None, timeout: float, retries: int, backoff: float,
                 sleep: Callable[[float], None] = time.sleep):
        url = urlsplit(base_url.rstrip("/"))
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"base_url {base_url!r} must look like http://host:port")
        self.https = url.scheme == "https"
        self.host, self.port = url.hostname, url.port
        self.prefix = url.path[:-3] if url.path.endswith("/v1") else url.path  # endpoints carry their /v1
        self.api_key, self.timeout, self.retries, self.backoff = api_key, timeout, retries, backoff
        self.sleep = sleep

    def _send(self, path: str, body: bytes, content_type: str) -> Response:
        cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        conn = cls(self.host, self.port, timeout=self.timeout)
        headers = {"Content-Type": content_type, "Accept": "application/json, audio/*"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        try:
            conn.request("POST", self.prefix + path, body=body, headers=headers)
            resp = conn.getresponse()
            return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()

    def post(self, path: str, body: bytes, content_type: str) -> Response:
        """The 2xx answer to ``POST path``; raises RequestFailed naming the status, timeout or connection error."""
        attempts = self.retries + 1
        for attempt in range(attempts):
            wait = None
            try:
                resp = self._send(path, body, content_type)
            except TimeoutError:  # not retried: the server may still be working on it, and waits would multiply
                raise RequestFailed(f"POST {path}: timed out after {self.timeout:g} s") from None
            except (http.client.HTTPException, OSError) as exc:  # refused, reset, malformed answer
                reason = f"POST {path}: connection error ({type(exc).__name__}: {exc})"
            else:
                if 200 <= resp.status < 300:
                    return resp
                reason = f"POST {path}: HTTP {resp.status}: {error_text(resp.body)}"
                if not _retryable(resp.status):
                    raise RequestFailed(reason)
                wait = retry_after(resp.headers.get("retry-after"))
            if attempt + 1 == attempts:
                break
            self.sleep(min(MAX_WAIT_S, wait if wait is not None else self.backoff * 2 ** attempt))
        raise RequestFailed(f"{reason} (after {attempts} attempt{'s' * (attempts > 1)})")

    def post_json(self, path: str, payload: dict) -> Response:
        return self.post(path, json.dumps(payload).encode(), "application/json")


def parse_json(resp: Response, path: str) -> dict:
    try:
        obj = json.loads(resp.body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RequestFailed(f"POST {path}: answer is not JSON: {error_text(resp.body)!r}") from None
    if not isinstance(obj, dict):
        raise RequestFailed(f"POST {path}: answer is not a JSON object")
    return obj


# ---- the model -------------------------------------------------------------------------------------------------------
class OpenAIAPIModel(Model):
    name = "openai-api"
    description = "a model behind an OpenAI-compatible HTTP server (vLLM, ...): transcribe, synthesize, respond"
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

    def identity(self) -> dict:
        """Server, model name and the arguments that shape outputs; not the key, nor its variable, nor the
        concurrency / timeout / retry settings (changing those reuses cached outputs)."""
        a = self.args
        shaping = ("max_tokens", "temperature", "voice", "prompt", "language", "instruction", "system_prompt")
        return {"name": self.name, "base_url": a.base_url.rstrip("/"), "model": a.model,
                "args": {k: getattr(a, k) for k in shaping}}

    def file_stamps(self) -> dict:
        return {}  # the weights live on the server; a local file named like the model says nothing about them

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

    # ---- capabilities --------------------------------------------------------------------------------------------
    def transcribe(self, audios: Sequence[Audio]) -> list[str]:
        fields = {"model": self.args.model, "response_format": "json"}
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
