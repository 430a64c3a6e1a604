"""A missing face model or CUDA device asked for ends in one `error:` line naming the fix, never a silent exit 0."""
import os
import subprocess
import sys

import pytest
import torch

from usgan.checkpoints import save_checkpoint
from usgan.config import preset
from usgan.step import Engine
from usgan.synthesize import main

from .eval_helpers import ASTRONAUT, REPO, assert_main_error, assert_one_line_error, run_main


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    d = tmp_path_factory.mktemp("ck")
    cfg = preset("tiny", **{"data.cache_dir": str(d / "cache")})
    save_checkpoint(d / "run", Engine.build(cfg), cfg)
    return d / "run"


def test_synthesize_without_face_models_fails_in_one_line(tiny_ckpt, tmp_path):
    # face_recognition_models as pip leaves it when absent, or when its pkg_resources import fails: a module
    # that cannot be imported. face_recognition answers that with quit(), exit code 0.
    shadow = tmp_path / "shadow" / "face_recognition_models"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'face_recognition_models'\")\n")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "usgan.synthesize", "--checkpoint", str(tiny_ckpt), "--input",
                           str(ASTRONAUT), "--expression", "happy", "--out", str(out)], cwd=REPO, text=True,
                          capture_output=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join([str(shadow.parent), str(REPO)])})
    assert_one_line_error(proc, "face_recognition_models", "bash scripts/setup.sh")
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible here: asking for it is fine")
def test_cuda_device_asked_for_without_gpu_fails_in_one_line(tiny_ckpt, tmp_path, capsys):
    assert_main_error(run_main(main, capsys, "--checkpoint", tiny_ckpt, "--input", ASTRONAUT, "--expression",
                               "happy", "--out", tmp_path / "o", "--device", "cuda"), "--device cpu")
    assert not (tmp_path / "o").exists()
