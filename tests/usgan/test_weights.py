"""usgan-weights: named weights, fetched from a local server standing in for the authors' URL, verified, cached."""
import dataclasses
import os
import socket
import subprocess

import pytest
import torch

from usgan import weights as named
from usgan.checkpoints import load_weights
from usgan.errors import CheckpointError
from usgan.data.align import DEFAULT_CROP
from usgan.synthesize import main as synthesize_main
from usgan.weights.__main__ import main as weights_main

from .eval_helpers import ASTRONAUT, REPO, assert_main_error, assert_one_line_error, run_cli, run_main
from .weights_helpers import authors_in_cache, serving, weights_dir  # noqa: F401 - a fixture

BODY = b"pretend generator bytes\n" * 4000


def _expect(monkeypatch, data: bytes):
    """Let 'authors' stand for data: its pinned blob id becomes the id of these bytes."""
    tmp = named.cache_dir().parent / "expected.bin"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_bytes(data)
    w = dataclasses.replace(named.KNOWN["authors"], blob_id=named.git_blob_id(tmp))
    monkeypatch.setitem(named.KNOWN, "authors", w)


def _cache_files():
    d = named.cache_dir()
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def test_blob_id_is_what_git_computes(tmp_path):
    f = tmp_path / "x.bin"
    f.write_bytes(BODY + b"\0\xff")
    git = subprocess.run(["git", "hash-object", str(f)], capture_output=True, text=True, check=True).stdout.strip()
    assert named.git_blob_id(f) == git
    assert named.KNOWN["authors"].blob_id == "64c3cfcfe0e6df583dfb33012a59859aa86194e5"
    assert named.KNOWN["authors"].url.startswith("https://github.com/arbishakram/US-GAN/raw/"
                                                  "be3fca227f737542bfe3523fddd1b794c2539641/")


def test_a_matching_download_is_cached_with_progress(weights_dir, monkeypatch, capsys):
    _expect(monkeypatch, BODY)
    seen = []
    with serving(BODY) as url:
        monkeypatch.setenv("USGAN_AUTHORS_URL", url)
        path = named.fetch("authors", on_progress=lambda done, total: seen.append((done, total)))
        assert path == weights_dir / "usgan_87_G.ckpt" and path.read_bytes() == BODY
        assert seen[-1] == (len(BODY), len(BODY)) and len(seen) > 1
        assert _cache_files() == ["usgan_87_G.ckpt"]
        rc, err, out = run_main(weights_main, capsys, "get", "authors")     # again: replaced by a verified copy
    assert rc == 0 and "verified; cached at" in out and _cache_files() == ["usgan_87_G.ckpt"]
    rc, _, out = run_main(weights_main, capsys, "list")
    assert rc == 0 and f"authors: present, {len(BODY) / 2 ** 20:.1f} MB, {path}" in out
    assert "no licence file" in out and "trained on: KDEF + RaFD + CFEE" in out
    assert run_main(weights_main, capsys, "path", "authors")[2].strip() == str(path)


def test_a_wrong_file_is_refused_and_nothing_is_left(weights_dir, capsys, monkeypatch):
    with serving(BODY) as url:
        monkeypatch.setenv("USGAN_AUTHORS_URL", url)
        result = run_main(weights_main, capsys, "get", "authors")
    actual = named.git_blob_id(_write(weights_dir.parent / "body.bin", BODY))
    assert_main_error(result, "refused authors", f"its git blob id is {actual}",
                      "expected 64c3cfcfe0e6df583dfb33012a59859aa86194e5", "nothing was kept")
    assert _cache_files() == []


def test_a_download_cut_off_halfway_is_not_present(weights_dir, capsys, monkeypatch):
    _expect(monkeypatch, BODY)
    with serving(BODY, "cut") as url:
        monkeypatch.setenv("USGAN_AUTHORS_URL", url)
        result = run_main(weights_main, capsys, "get", "authors")
    assert_main_error(result, f"stopped after {len(BODY) // 2:,} of {len(BODY):,} bytes", "nothing was kept")
    assert _cache_files() == [] and not named.is_present("authors")
    assert "authors: missing (usgan-weights get authors)" in run_main(weights_main, capsys, "list")[2]


def test_offline_and_http_errors_are_one_line_with_the_url(tmp_path):
    with socket.socket() as s:                    # a port nothing listens on: connection refused, as offline
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/usgan_87_G.ckpt"
    env = {"USGAN_WEIGHTS_DIR": str(tmp_path / "c"), "USGAN_AUTHORS_URL": dead}
    proc = _weights_cli(env, "get", "authors")
    assert_one_line_error(proc, "could not download authors", dead, "usgan-weights get authors --file")
    with serving(BODY, "404") as url:
        proc = _weights_cli({**env, "USGAN_AUTHORS_URL": url}, "get", "authors")
    assert_one_line_error(proc, "HTTP 404", url)
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").iterdir())
    assert_one_line_error(_weights_cli(env, "get", "nobody"), "unknown weights 'nobody'", "demo, authors")
    assert_one_line_error(_weights_cli(env, "path", "authors"), "usgan-weights get authors")


def test_a_copy_fetched_by_hand_is_verified_before_it_is_cached(weights_dir, tmp_path, capsys, monkeypatch):
    mine = _write(tmp_path / "Downloads" / "usgan_87_G.ckpt", BODY)
    assert_main_error(run_main(weights_main, capsys, "get", "authors", "--file", mine), "refused authors")
    assert _cache_files() == []
    _expect(monkeypatch, BODY)
    assert run_main(weights_main, capsys, "get", "authors", "--file", mine)[0] == 0
    assert (weights_dir / "usgan_87_G.ckpt").read_bytes() == BODY and _cache_files() == ["usgan_87_G.ckpt"]


def test_a_missing_named_weight_says_how_to_get_it(weights_dir, capsys, tmp_path):
    proc = run_cli("usgan.synthesize", "--checkpoint", "authors", "--input", ASTRONAUT, "--out", tmp_path / "o")
    assert_one_line_error(proc, "not downloaded yet", "run `usgan-weights get authors`")
    assert_main_error(run_main(synthesize_main, capsys, "--checkpoint", "authors", "--input", ASTRONAUT, "--out",
                               tmp_path / "o"), "usgan-weights get authors")


def test_names_resolve_in_one_place_and_say_what_they_are(weights_dir, monkeypatch):
    demo = load_weights()                       # no name: the shipped demo
    assert demo.source == "demo" and "synthetic" in demo.line() and demo.crop == named.KNOWN["demo"].crop
    ref = authors_in_cache(weights_dir)
    w = load_weights("authors")
    assert w.size == 128 and w.crop == named.KNOWN["authors"].crop and "'authors' weights" in w.line()
    x, c = torch.rand(1, 3, 128, 128) * 2 - 1, torch.eye(7)[[3]]
    ref.train()                                 # as their test loop leaves it: per-image statistics
    with torch.no_grad():
        assert torch.allclose(w.G(x, c), ref(x, c), atol=1e-5)
    # By path: the demo reads its geometry from the record beside it; a random authors-layout file is not the
    # authors' (its blob id says so) and gets our default crop, the real one would get theirs.
    assert load_weights(str(named.weight_path("demo"))).crop == demo.crop
    mine = weights_dir / "usgan_87_G.ckpt"
    assert load_weights(str(mine)).crop == DEFAULT_CROP
    monkeypatch.setitem(named.KNOWN, "authors", dataclasses.replace(named.KNOWN["authors"],
                                                                    blob_id=named.git_blob_id(mine)))
    assert load_weights(str(mine)).crop == w.crop and "'authors' weights" in load_weights(str(mine)).line()


def test_files_from_outside_cannot_run_code(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)
    evil = tmp_path / "usgan_87_G.ckpt"
    torch.save({"main.0.weight": torch.zeros(1), "x": Payload()}, evil)
    with pytest.raises(CheckpointError, match="Python objects besides tensors"):
        load_weights(str(evil))
    assert not marker.exists()


def _write(path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _weights_cli(env: dict, *args):
    full = {**os.environ, "PYTHONPATH": str(REPO), **env}
    return subprocess.run([os.sys.executable, "-m", "usgan.weights", *args], cwd=REPO, env=full, capture_output=True,
                          text=True, timeout=120)
