"""``openai-api`` against a real HTTP server started here (127.0.0.1, ThreadingHTTPServer in a thread).

The server implements the three endpoints the adapter uses and parses what it receives with the standard library
(``email`` for the multipart body, ``soundfile`` for the WAVs), so the adapter's encoding is checked independently.
Every server stops at the end of its test; every wait is bounded.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import soundfile as sf
from conftest import read_jsonl, run_cli

from most_eval.core.adapter import SampleFailure
from most_eval.core.audio import Audio
from most_eval.models.openai_api import OpenAIAPIArgs, OpenAIAPIModel
from most_eval.core.options import OptionError, parse_options

TASK = "asr:librispeech-test-clean"
SPEECH_RATE = 24_000  # the fake server's TTS output rate (differs from the 16 kHz input on purpose)


def wav(samples: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def tone(n: int, rate: int = 16_000) -> Audio:
    return Audio((0.3 * np.sin(np.arange(n) * 0.05)).astype(np.float32), rate)


class FakeOpenAI:
    """An OpenAI-compatible server with hooks. ``hook(server, path, info)`` may return ``(status, headers, body)``
    to override the normal answer, or the string "hang" to stay silent until the server stops (at most 5 s)."""

    def __init__(self, delay: float = 0.0, text: str | None = None, give_audio: bool = True, hook=None,
                 gate: int = 0):
        self.delay, self.text, self.give_audio, self.hook = delay, text, give_audio, hook
        #: hold each request (at most 10 s) until ``gate`` requests have been in flight at once, so a concurrent
        #: client is seen overlapping however slowly a loaded machine schedules its threads
        self.gate = gate
        self.lock = threading.Condition()
        self.in_flight = self.max_in_flight = 0
        self.requests: list[dict] = []  # {"path", "headers", "fields"/"json", "frames"}
        self.stopping = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                with outer.lock:
                    outer.in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer.in_flight)
                    outer.lock.notify_all()
                    outer.lock.wait_for(lambda: outer.max_in_flight >= outer.gate, timeout=10)
                counted = True
                try:
                    body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                    status, headers, payload = outer.answer(self.path, dict(self.headers), body)
                    # A request stops counting before its answer is sent: a client that waits for each answer can
                    # then never be seen overlapping, however late this thread resumes after its last write.
                    with outer.lock:
                        outer.in_flight -= 1
                    counted = False
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)
                finally:
                    if counted:
                        with outer.lock:
                            outer.in_flight -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    # ---- the endpoints ---------------------------------------------------------------------------------------------
    def answer(self, path: str, headers: dict, body: bytes):
        info = {"path": path, "headers": headers}
        if path == "/v1/audio/transcriptions":
            ctype = headers.get("Content-Type", "")
            msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                f"Content-Type: {ctype}\r\n\r\n".encode() + body)
            parts = {p.get_param("name", header="content-disposition"): p for p in msg.iter_parts()}
            info["fields"] = {k: p.get_content() for k, p in parts.items() if k != "file"}
            info["file_type"] = parts["file"].get_content_type()
            info["file_name"] = parts["file"].get_filename()
            info["wav"] = parts["file"].get_payload(decode=True)
        else:
            info["json"] = json.loads(body)
            if path == "/v1/chat/completions":
                audio_part = info["json"]["messages"][-1]["content"][-1]
                info["wav"] = base64.b64decode(audio_part["input_audio"]["data"])
        if "wav" in info:
            info["sf_info"] = sf.info(io.BytesIO(info["wav"]))
            info["samples"], _ = sf.read(io.BytesIO(info["wav"]), dtype="float32")
            info["digest"] = hashlib.sha1(info["wav"]).hexdigest()
        with self.lock:
            self.requests.append(info)
        if self.delay:
            time.sleep(self.delay)
        if self.hook:
            override = self.hook(self, path, info)
            if override == "hang":
                self.stopping.wait(5)
                return 200, {"Content-Type": "application/json"}, b'{"text": "too late"}'
            if override is not None:
                return override
        return self.normal(path, info)

    def normal(self, path: str, info: dict):
        as_json = {"Content-Type": "application/json"}
        if path == "/v1/audio/transcriptions":
            text = self.text if self.text is not None else f"frames {len(info['samples'])}"
            return 200, as_json, json.dumps({"text": text}).encode()
        if path == "/v1/audio/speech":
            n = 100 * len(info["json"]["input"])
            return 200, {"Content-Type": "audio/wav"}, wav(tone(n, SPEECH_RATE).samples, SPEECH_RATE)
        if path == "/v1/chat/completions":
            message = {"role": "assistant", "content": f"heard {len(info['samples'])} frames"}
            if "audio" in info["json"].get("modalities", []) and self.give_audio:
                spoken = wav(tone(2 * len(info["samples"]), SPEECH_RATE).samples, SPEECH_RATE)
                message["audio"] = {"id": "a1", "data": base64.b64encode(spoken).decode(), "transcript": "hi"}
            return 200, as_json, json.dumps({"choices": [{"index": 0, "message": message}]}).encode()
        return 404, as_json, b'{"error": {"message": "no such endpoint"}}'


def make_model(url: str, **kw) -> OpenAIAPIModel:
    return OpenAIAPIModel(OpenAIAPIArgs(base_url=url, model="m", **kw))


# ---- options and identity ----------------------------------------------------------------------------------------
def test_args_are_typed_and_identity_has_no_key(monkeypatch):
    args = parse_options("base_url=http://127.0.0.1:9/v1,model=m,concurrency=4,timeout=0.5,api_key_env=K",
                         OpenAIAPIArgs, "openai-api key")
    assert (args.concurrency, args.timeout, args.base_url) == (4, 0.5, "http://127.0.0.1:9/v1")
    with pytest.raises(OptionError, match="did you mean concurrency"):
        parse_options("concurency=4", OpenAIAPIArgs, "openai-api key")
    with pytest.raises(OptionError, match="concurrency must be at least 1"):
        parse_options("concurrency=0", OpenAIAPIArgs, "openai-api key")
    with pytest.raises(ValueError, match="needs base_url"):
        OpenAIAPIModel(OpenAIAPIArgs(model="m"))
    with pytest.raises(ValueError, match="K: that environment variable is not set"):
        monkeypatch.delenv("K", raising=False)
        OpenAIAPIModel(args)
    monkeypatch.setenv("K", "sk-secret-123")
    model = OpenAIAPIModel(args)  # a server that does not answer /v1/models leaves its facts unavailable
    assert model.facts()["unavailable"].startswith("GET /v1/models: connection error")
    ident = json.dumps(model.identity())
    assert "sk-secret-123" not in ident and "http://127.0.0.1:9/v1" in ident and '"m"' in ident
    # settings that do not change outputs do not change the fingerprint (cached outputs are reused)
    faster = OpenAIAPIModel(OpenAIAPIArgs(base_url="http://127.0.0.1:9/v1", model="m", concurrency=16))
    assert faster.fingerprint() == model.fingerprint()
    assert OpenAIAPIModel(OpenAIAPIArgs(base_url="http://127.0.0.1:9/v1", model="other")).fingerprint() \
        != model.fingerprint()
    assert model.capabilities() == {"transcribe", "synthesize", "respond", "score_text", "generate_text"}
    # text scoring needs the served model's tokenizer here: without tokenizer= the text tasks are not supported
    assert not model.supports("text:arc_easy", "score_text") and not hasattr(model, "max_length")


# ---- transcribe ------------------------------------------------------------------------------------------------------
def test_multipart_upload_is_a_16bit_wav_and_key_is_a_bearer_header(monkeypatch):
    monkeypatch.setenv("MOST_EVAL_TEST_KEY", "sk-test-123")
    audio = tone(8000)
    with FakeOpenAI() as server:
        model = make_model(server.url + "/v1", api_key_env="MOST_EVAL_TEST_KEY", prompt="names: Ana", language="en")
        assert model.transcribe([audio]) == ["frames 8000"]
    (req,) = server.requests
    assert req["headers"]["Authorization"] == "Bearer sk-test-123"
    assert req["fields"] == {"model": "m", "response_format": "json", "temperature": "0.0", "prompt": "names: Ana",
                             "language": "en"}
    assert (req["file_type"], req["file_name"]) == ("audio/wav", "audio.wav")
    info = req["sf_info"]
    assert (info.format, info.subtype, info.samplerate, info.channels) == ("WAV", "PCM_16", 16000, 1)
    assert np.abs(req["samples"] - audio.samples).max() < 1e-4  # 16-bit quantisation only


def test_no_key_means_no_authorization_header():
    with FakeOpenAI(text="hello") as server:
        assert make_model(server.url).transcribe([tone(1600)]) == ["hello"]
    assert "Authorization" not in server.requests[0]["headers"]


def test_concurrency_is_bounded_and_outputs_keep_input_order():
    audios = [tone(1000 + 10 * i) for i in range(12)]
    with FakeOpenAI(delay=0.1, gate=2) as server:  # a client that never overlaps waits 10 s per request, then fails
        out = make_model(server.url, concurrency=4).transcribe(audios)
    assert out == [f"frames {1000 + 10 * i}" for i in range(12)]
    assert 1 < server.max_in_flight <= 4
    with FakeOpenAI(delay=0.02) as server:
        make_model(server.url, concurrency=1).transcribe(audios[:4])
    assert server.max_in_flight == 1


def test_429_then_5xx_then_success_is_retried_with_retry_after():
    def hook(server, path, info):
        n = len(server.requests)
        if n == 1:
            return 429, {"Retry-After": "2"}, b'{"error": {"message": "rate limited"}}'
        if n == 2:
            return 503, {}, b"overloaded"
        return None

    with FakeOpenAI(text="the answer", hook=hook) as server:
        model = make_model(server.url, retries=3, backoff=0.1)
        waits = []
        model.client.sleep = waits.append  # record the waits instead of sleeping them
        assert model.transcribe([tone(1600)]) == ["the answer"]
    assert len(server.requests) == 3
    assert waits == [2.0, 0.2]  # Retry-After honoured; then the backoff, doubled for the second retry


def test_real_backoff_sleeps_then_succeeds():
    def hook(server, path, info):
        return (429, {}, b"slow down") if len(server.requests) == 1 else None

    with FakeOpenAI(text="ok", hook=hook) as server:
        start = time.monotonic()
        assert make_model(server.url, backoff=0.2).transcribe([tone(1600)]) == ["ok"]
        assert time.monotonic() - start >= 0.18
    assert len(server.requests) == 2


def test_persistent_500_becomes_that_samples_failure_and_4xx_is_not_retried():
    failing = tone(1234)

    def hook(server, path, info):
        if len(info["samples"]) == 1234:
            return 500, {"Content-Type": "application/json"}, b'{"error": {"message": "CUDA out of memory"}}'
        if len(info["samples"]) == 999:
            return 400, {}, b'{"error": {"message": "audio too short"}}'
        return None

    with FakeOpenAI(hook=hook) as server:
        model = make_model(server.url, retries=2, backoff=0.01)
        out = model.transcribe([tone(1600), failing, tone(999), tone(1700)])
    assert out[0] == "frames 1600" and out[3] == "frames 1700"
    assert isinstance(out[1], SampleFailure) and isinstance(out[2], SampleFailure)
    assert "HTTP 500" in out[1].reason and "CUDA out of memory" in out[1].reason and "after 3 attempts" in out[1].reason
    assert "HTTP 400" in out[2].reason and "audio too short" in out[2].reason and "attempts" not in out[2].reason
    assert "\n" not in out[1].reason + out[2].reason
    counts = [len(r["samples"]) for r in server.requests]
    assert counts.count(1234) == 3 and counts.count(999) == 1


def test_timeout_becomes_that_samples_failure():
    def hook(server, path, info):
        return "hang" if len(info["samples"]) == 4321 else None

    with FakeOpenAI(hook=hook) as server:
        model = make_model(server.url, timeout=0.3, retries=2)
        start = time.monotonic()
        out = model.transcribe([tone(1600), tone(4321)])
        elapsed = time.monotonic() - start
    assert out[0] == "frames 1600"
    assert isinstance(out[1], SampleFailure) and "timed out after 0.3 s" in out[1].reason
    assert elapsed < 3  # one timeout, not retried
    assert [len(r["samples"]) for r in server.requests].count(4321) == 1


def test_unreachable_server_fails_samples_not_the_batch():
    with FakeOpenAI() as server:
        url = server.url
    out = make_model(url, retries=1, backoff=0.01, timeout=2).transcribe([tone(1600)])  # server gone: refused
    assert isinstance(out[0], SampleFailure) and "connection error" in out[0].reason


def test_malformed_answers_fail_their_sample_with_one_line_naming_the_endpoint():
    """An answer that is not JSON, JSON that is not an object, or an object without the field: that sample's failure."""
    bodies = iter([b"<html>oops</html>", b"[1, 2]", b'{"txt": "hello"}', b'{"choices": []}'])

    def hook(server, path, info):
        return 200, {"Content-Type": "application/json"}, next(bodies)

    with FakeOpenAI(hook=hook) as server:
        model = make_model(server.url, concurrency=1)
        said = model.transcribe([tone(1600), tone(1700), tone(1800)]) + model.respond([tone(1900)])
    reasons = [r.reason for r in said]
    assert reasons == ["POST /v1/audio/transcriptions: answer is not JSON: '<html>oops</html>'",
                       "POST /v1/audio/transcriptions: answer is not a JSON object",
                       "POST /v1/audio/transcriptions: answer has no 'text' field",
                       "POST /v1/chat/completions: answer has no choices[0].message"]


# ---- synthesize and respond ---------------------------------------------------------------------------------------
def test_speech_round_trip():
    with FakeOpenAI() as server:
        out = make_model(server.url, voice="nova").synthesize(["hello there", "hi"], [tone(100), None])
    assert [type(a) for a in out] == [Audio, Audio]
    assert [(a.sample_rate, len(a.samples)) for a in out] == [(SPEECH_RATE, 1100), (SPEECH_RATE, 200)]
    assert out[0].samples.dtype == np.float32
    by_input = {r["json"]["input"]: r["json"] for r in server.requests}
    assert by_input["hello there"] == {"model": "m", "input": "hello there", "voice": "nova", "response_format": "wav"}
    assert set(by_input) == {"hello there", "hi"}  # the speaker prompt is not sent: the API has no voice cloning


def test_undecodable_speech_is_a_failure():
    def hook(server, path, info):
        return 200, {"Content-Type": "text/plain"}, b"not audio"

    with FakeOpenAI(hook=hook) as server:
        (out,) = make_model(server.url).synthesize(["hello"])
    assert isinstance(out, SampleFailure) and "not decodable audio" in out.reason and "text/plain" in out.reason


def test_respond_text_and_speech():
    question = tone(3200)
    with FakeOpenAI() as server:
        model = make_model(server.url, instruction="Answer briefly.", system_prompt="Be exact.", max_tokens=64)
        assert model.respond([question], "text") == ["heard 3200 frames"]
        (spoken,) = model.respond([question], "speech")
    text_req, speech_req = server.requests
    body = text_req["json"]
    assert body["messages"][0] == {"role": "system", "content": "Be exact."}
    user = body["messages"][1]
    assert user["role"] == "user" and user["content"][0] == {"type": "text", "text": "Answer briefly."}
    assert user["content"][1]["type"] == "input_audio" and user["content"][1]["input_audio"]["format"] == "wav"
    assert (body["max_tokens"], body["temperature"]) == (64, 0.0) and "modalities" not in body
    assert np.abs(text_req["samples"] - question.samples).max() < 1e-4
    assert speech_req["json"]["modalities"] == ["text", "audio"]
    assert speech_req["json"]["audio"] == {"voice": "alloy", "format": "wav"}
    assert isinstance(spoken, Audio) and (spoken.sample_rate, len(spoken.samples)) == (SPEECH_RATE, 6400)


def test_respond_speech_without_audio_is_a_failure():
    with FakeOpenAI(give_audio=False) as server:
        (out,) = make_model(server.url).respond([tone(1600)], "speech")
    assert isinstance(out, SampleFailure) and "gave no audio" in out.reason


# ---- end to end through the CLI --------------------------------------------------------------------------------------
def _run(url: str, out, extra: str = ""):
    return run_cli("run", "--model", "openai-api", "--model-args", f"base_url={url},model=m{extra}",
                   "--tasks", TASK, "--limit", "3", "--output", str(out), "--no-progress", timeout=240)


def test_cli_end_to_end(tmp_path):
    with FakeOpenAI(text="the old man sat down") as server:
        proc = _run(server.url, tmp_path / "ok")
    assert proc.returncode == 0, proc.stderr
    records = read_jsonl(tmp_path / "ok" / "samples" / "asr_librispeech-test-clean.jsonl")
    assert len(records) == 3 and all("error" not in r and r["hyp_raw"] == "the old man sat down" for r in records)
    res = json.loads((tmp_path / "ok" / "results.json").read_text())["results"][TASK]
    assert (res["scored"], res["errors"]) == (3, 0)
    assert len(server.requests) == 3

    def hook(server, path, info):  # the first audio the server sees always fails
        with server.lock:
            server.doomed = getattr(server, "doomed", info["digest"])
        return (500, {}, b"internal error") if info["digest"] == server.doomed else None

    with FakeOpenAI(text="the old man sat down", hook=hook) as server:
        proc = _run(server.url, tmp_path / "err", ",retries=1,backoff=0.01")
    assert proc.returncode == 0, proc.stderr
    records = read_jsonl(tmp_path / "err" / "samples" / "asr_librispeech-test-clean.jsonl")
    errors = [r for r in records if "error" in r]
    assert len(records) == 3 and len(errors) == 1
    assert "HTTP 500" in errors[0]["error"] and "internal error" in errors[0]["error"]
    res = json.loads((tmp_path / "err" / "results.json").read_text())["results"][TASK]
    assert (res["scored"], res["errors"]) == (2, 1)


# ---- text scoring over /v1/completions (the served tests run it against vLLM) ----------------------------------------
def test_prompt_logprobs_are_summed_over_the_continuation_and_greedy_means_rank_1():
    from most_eval.models.openai_api import continuation_logprob
    from most_eval.models.openai_client import RequestFailed

    prompt = [5, 6, 7, 8]
    answer = {"prompt_logprobs": [None, {"6": {"logprob": -1.5, "rank": 3}},
                                  {"7": {"logprob": -0.25, "rank": 1}}, {"8": {"logprob": -0.5, "rank": 1}}]}
    assert continuation_logprob(answer, prompt, 2) == (-0.75, True)
    assert continuation_logprob(answer, prompt, 3) == (-2.25, False)
    with pytest.raises(RequestFailed, match="no prompt_logprobs for the 4 prompt tokens"):
        continuation_logprob({"choices": [{"text": "x"}]}, prompt, 2)  # a server that ignores the option
    other = {"prompt_logprobs": [None, None, {"9": {"logprob": -1.0, "rank": 1}}, {"8": {"logprob": -1.0}}]}
    with pytest.raises(RequestFailed, match=r"prompt_logprobs\[2\] has no log-probability of token 7"):
        continuation_logprob(other, prompt, 2)


def test_completions_without_prompt_logprobs_fail_with_one_line_naming_the_endpoint(tmp_path):
    """A server whose /v1/completions ignores prompt_logprobs: scoring fails loudly, never a made-up number."""
    from most_eval.models.openai_client import RequestFailed

    folder = tmp_path / "tok"
    folder.mkdir()
    _byte_tokenizer(folder)

    def hook(server, path, info):
        return 200, {"Content-Type": "application/json"}, json.dumps({"choices": [{"text": "a"}]}).encode()

    with FakeOpenAI(hook=hook) as server:
        model = make_model(server.url, tokenizer=str(folder), max_length=16)
        assert model.supports("text:x", "score_text") and model.max_length == 16
        with pytest.raises(RequestFailed, match=r"^POST /v1/completions: the answer has no prompt_logprobs"):
            model.score_text(["the sky is"], [" blue"])
        assert model.generate_text(["the sky is"], [["\n"]], 4) == ["a"]
    paths = [r["path"] for r in server.requests]
    assert paths == ["/v1/completions", "/v1/completions"]
    first = server.requests[0]["json"]
    assert first["prompt_logprobs"] == 0 and first["max_tokens"] == 1 and all(isinstance(t, int) for t in first["prompt"])


def _byte_tokenizer(folder):
    import transformers
    from tokenizers import pre_tokenizers

    vocab = {"<|endoftext|>": 0, **{c: i + 1 for i, c in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}}
    transformers.Qwen2Tokenizer(vocab=vocab, merges=[], bos_token=None, eos_token="<|endoftext|>",
                                unk_token=None).save_pretrained(folder)


def test_a_failing_text_request_stops_the_rest_at_once(tmp_path):
    """lm-eval has no per-request failure: the first scoring request that still fails is raised and the requests
    not yet sent are cancelled, not each tried and retried first."""
    from most_eval.models.openai_client import RequestFailed

    folder = tmp_path / "tok"
    folder.mkdir()
    _byte_tokenizer(folder)

    def hook(server, path, info):
        return 500, {"Content-Type": "application/json"}, b'{"error": {"message": "engine dead"}}'

    with FakeOpenAI(hook=hook) as server:
        model = make_model(server.url, tokenizer=str(folder), max_length=16, concurrency=2, retries=1, backoff=0.01)
        with pytest.raises(RequestFailed, match=r"POST /v1/completions: HTTP 500: engine dead \(after 2 attempts\)"):
            model.score_text(["the sky is"] * 200, [" blue"] * 200)
    assert len(server.requests) < 20  # of the 400 that trying every pair twice would send
