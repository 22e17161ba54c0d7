"""Throughput of the ``openai-api`` adapter: concurrency 1 vs 8 against a local server with a fixed delay.

    python benchmarks/bench_openai_api.py [--requests 64] [--delay-ms 50] [--concurrency 8]

The server (127.0.0.1, ThreadingHTTPServer) answers every ``/v1/audio/transcriptions`` after ``--delay-ms``, as a
model server with spare batch capacity would; nothing else is contacted. With a fixed per-request latency the
ideal speed-up is the concurrency itself; the target is at least 6x for 8 workers (the rest is WAV encoding,
connection set-up and thread hand-off on the client). Prints requests/s for both settings and the ratio.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from most_eval.core.audio import Audio
from most_eval.models.openai_api import OpenAIAPIArgs, OpenAIAPIModel


def serve(delay_s: float) -> ThreadingHTTPServer:
    """A fake transcription server in a daemon thread; call ``shutdown()`` and ``server_close()`` when done."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            time.sleep(delay_s)
            body = json.dumps({"text": "hello"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.request_queue_size = 64
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return httpd


def throughput(url: str, audios: list[Audio], concurrency: int) -> float:
    """Requests per second for one batch of ``audios`` at ``concurrency``; every answer must be correct."""
    model = OpenAIAPIModel(OpenAIAPIArgs(base_url=url, model="bench", concurrency=concurrency, timeout=30))
    start = time.perf_counter()
    out = model.transcribe(audios)
    elapsed = time.perf_counter() - start
    assert out == ["hello"] * len(audios), f"unexpected answers: {out[:3]}"
    return len(audios) / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=64)
    ap.add_argument("--delay-ms", type=float, default=50.0)
    ap.add_argument("--concurrency", type=int, default=8)
    opts = ap.parse_args()
    rng = np.random.default_rng(0)
    audios = [Audio((0.1 * rng.standard_normal(16_000 * 3)).astype(np.float32), 16_000)  # 3 s clips
              for _ in range(opts.requests)]
    httpd = serve(opts.delay_ms / 1000)
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        throughput(url, audios[:4], opts.concurrency)  # warm-up
        serial = throughput(url, audios, 1)
        parallel = throughput(url, audios, opts.concurrency)
    finally:
        httpd.shutdown()
        httpd.server_close()
    ideal = 1000 / opts.delay_ms
    print(f"{opts.requests} requests, server delay {opts.delay_ms:g} ms (ideal {ideal:.1f} req/s per worker)")
    print(f"concurrency 1: {serial:7.1f} req/s")
    print(f"concurrency {opts.concurrency}: {parallel:7.1f} req/s")
    print(f"speed-up: {parallel / serial:.2f}x (target >= 6x for 8)")


if __name__ == "__main__":
    main()
