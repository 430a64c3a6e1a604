"""A local HTTP server standing in for the authors' URL, and an authors-layout file in a private weights cache."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from .eval_helpers import authors_checkpoint


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body, mode = self.server.body, self.server.mode
        if mode == "404":
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        # "cut": the connection drops halfway through the promised body, as a dropped download does.
        self.wfile.write(body if mode == "full" else body[:len(body) // 2])
        self.server.requests += 1

    def log_message(self, *args):
        pass


@contextmanager
def serving(body: bytes, mode: str = "full"):
    """Yield the URL of a 127.0.0.1 server answering every GET with body ("full"), half of it ("cut") or 404."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.body, server.mode, server.requests = body, mode, 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/pre-trained_model/usgan_87_G.ckpt"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def weights_dir(tmp_path, monkeypatch) -> Path:
    """A private USGAN_WEIGHTS_DIR, so no test touches the user's cache."""
    d = tmp_path / "weights-cache"
    monkeypatch.setenv("USGAN_WEIGHTS_DIR", str(d))
    return d


def authors_in_cache(cache: Path, seed: int = 0):
    """Random weights in the authors' exact layout (their keys and shapes, width 64) where `get authors` puts them."""
    cache.mkdir(parents=True, exist_ok=True)
    return authors_checkpoint(cache / "usgan_87_G.ckpt", conv_dim=64, seed=seed)
