"""The HTTP side of the OpenAI-compatible adapter: a client that POSTs and GETs to one server with timeouts and
retries, and the small conversions its requests need (audio to WAV bytes, multipart bodies, one-line error text).

Only ``base_url`` is ever contacted: no proxies from the environment, no redirects followed. A 429 or 5xx answer (or
a dropped connection) is retried with exponential backoff, honouring ``Retry-After``; a request that still fails, or
times out, raises :class:`RequestFailed` with a one-line reason naming the endpoint and status.
"""

from __future__ import annotations

import email.utils
import http.client
import io
import json
import time
import uuid
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlsplit

import numpy as np
import soundfile as sf

from most_eval.core.audio import Audio, to_mono_float32
from most_eval.core.errors import MostEvalError

MAX_WAIT_S = 60.0  # longest single wait between attempts, whatever Retry-After or the backoff says
ERROR_SNIPPET = 160  # characters of a server's error body kept in the failure reason
MODELS = "/v1/models"
VERSION = "/version"  # vLLM's; OpenAI's own API has none
FACTS_TIMEOUT_S = 10.0  # the longest a GET of server facts (/v1/models, /version) may take


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
    """POSTs (with timeouts and retries) and GETs to one server; one connection per request, so it is safe across
    threads."""

    def __init__(self, base_url: str, api_key: str | None, timeout: float, retries: int, backoff: float,
                 sleep: Callable[[float], None] = time.sleep):
        url = urlsplit(base_url.rstrip("/"))
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"base_url {base_url!r} must look like http://host:port")
        self.base_url = base_url.rstrip("/")
        self.https = url.scheme == "https"
        self.host, self.port = url.hostname, url.port
        self.prefix = url.path[:-3] if url.path.endswith("/v1") else url.path  # endpoints carry their /v1
        self.api_key, self.timeout, self.retries, self.backoff = api_key, timeout, retries, backoff
        self.sleep = sleep

    def _send(self, path: str, body: bytes | None, content_type: str | None, method: str = "POST",
              timeout: float | None = None) -> Response:
        cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        conn = cls(self.host, self.port, timeout=timeout or self.timeout)
        headers = {"Accept": "application/json, audio/*"}
        if content_type:
            headers["Content-Type"] = content_type
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        try:
            conn.request(method, self.prefix + path, body=body, headers=headers)
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
        """``POST path`` with a JSON body (see :meth:`post`)."""
        return self.post(path, json.dumps(payload).encode(), "application/json")

    def get_json(self, path: str) -> dict:
        """The JSON object a ``GET path`` answers, tried once with a short timeout (server facts, never a
        sample's output); raises RequestFailed naming the status or the connection error."""
        try:
            resp = self._send(path, None, None, method="GET", timeout=min(self.timeout, FACTS_TIMEOUT_S))
        except (http.client.HTTPException, OSError) as exc:
            raise RequestFailed(f"GET {path}: connection error ({type(exc).__name__}: {exc})") from None
        if not 200 <= resp.status < 300:
            raise RequestFailed(f"GET {path}: HTTP {resp.status}: {error_text(resp.body)}")
        return parse_json(resp, path, "GET")


def parse_json(resp: Response, path: str, method: str = "POST") -> dict:
    """The JSON object of an answer; RequestFailed (naming the endpoint) for anything else."""
    try:
        obj = json.loads(resp.body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RequestFailed(f"{method} {path}: answer is not JSON: {error_text(resp.body)!r}") from None
    if not isinstance(obj, dict):
        raise RequestFailed(f"{method} {path}: answer is not a JSON object")
    return obj


def server_facts(client: Client, model: str) -> dict:
    """What the server says of itself, for results.json: the served model's ``/v1/models`` entry (``id``, ``root``,
    ``max_model_len``, ``owned_by``) and ``/version`` where it answers one (vLLM does). A server that lists models
    but not ``model`` raises ValueError naming the ones it lists; one that does not answer (down, no such endpoint)
    gives ``{"unavailable": reason}``, and its samples fail one by one later, each with its own reason."""
    try:
        listing = client.get_json(MODELS)
    except RequestFailed as exc:
        return {"unavailable": str(exc)}
    entries = [e for e in listing.get("data") or [] if isinstance(e, dict) and isinstance(e.get("id"), str)]
    if entries and model not in {e["id"] for e in entries}:
        raise ValueError(f"the server at {client.base_url} does not serve model {model!r}; it lists: "
                         + ", ".join(sorted(e["id"] for e in entries)))
    facts: dict = {"served_model": model}
    for entry in entries:
        if entry["id"] == model:
            facts.update((k, entry[k]) for k in ("root", "max_model_len", "owned_by") if entry.get(k) is not None)
    try:
        version = client.get_json(VERSION).get("version")
        if isinstance(version, str):
            facts["server_version"] = version
    except RequestFailed:
        pass  # not every server reports one
    return facts
