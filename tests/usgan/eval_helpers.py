"""Shared by the evaluate / synthesize / export tests: tiny checkpoints, the astronaut photo, CLI runs."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from usgan.authors_reference import AuthorsGenerator

REPO = Path(__file__).resolve().parents[2]
ASTRONAUT = REPO / "tests" / "data" / "astronaut.png"
# Eileen Collins' face in the 512x512 astronaut photo, (left, top, right, bottom), from face_recognition.
ASTRONAUT_FACE = (175, 76, 265, 166)
# The mission patch on her suit, (top, right, bottom, left) as dlib's HOG detector boxes it (and the CNN rejects).
MISSION_PATCH = (335, 215, 425, 126)


def tiny_run(directory) -> Path:
    """A freshly initialised tiny US-GAN (64 px) saved as a run folder: untrained, but its changes are visible."""
    from usgan.checkpoints import save_checkpoint
    from usgan.config import preset
    from usgan.step import Engine

    d = Path(directory)
    cfg = preset("tiny", **{"data.cache_dir": str(d / "cache")})
    torch.manual_seed(0)
    return save_checkpoint(d / "run", Engine.build(cfg), cfg)


def authors_checkpoint(path, conv_dim=8, seed=0) -> AuthorsGenerator:
    """A stock-PyTorch generator with randomised IN affine weights and running stats, saved as the authors do."""
    torch.manual_seed(seed)
    ref = AuthorsGenerator(conv_dim=conv_dim)
    for m in ref.modules():
        if isinstance(m, torch.nn.InstanceNorm2d):
            # Non-trivial running stats: a loader that normalised with them (.eval()) would give other images.
            m.weight.data.uniform_(0.5, 1.5), m.bias.data.uniform_(-0.3, 0.3)
            m.running_mean.uniform_(-1, 1), m.running_var.uniform_(0.5, 2)
    torch.save(ref.state_dict(), path)
    return ref


def face_crop(size=128, pad=25) -> np.ndarray:
    """The astronaut's face with `pad` pixels of margin, resized: an aligned-looking crop for encoding tests."""
    l, t, r, b = ASTRONAUT_FACE
    im = Image.open(ASTRONAUT).convert("RGB").crop((l - pad, t - pad, r + pad, b + pad))
    return np.array(im.resize((size, size), Image.BICUBIC))


def run_cli(module: str, *args, timeout=120) -> subprocess.CompletedProcess:
    """python -m module args, from the repo root, capturing text output."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


def assert_one_line_error(proc, *fragments):
    """Exit code 2, stderr is exactly one `error:` line naming the problem, no traceback."""
    err = proc.stderr.strip()
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-500:], err[-2000:])
    assert "Traceback" not in err and "Traceback" not in proc.stdout
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for f in fragments:
        assert f in lines[0], (f, lines[0])


def run_main(main, capsys, *args):
    """Call a CLI's main through cli_common.run in this process; returns (exit code, stderr, stdout)."""
    from usgan.cli_common import run

    capsys.readouterr()
    try:
        rc = run(main, [str(a) for a in args])
    except SystemExit as e:      # argparse's own errors exit through OneLineParser.error
        rc = e.code
    out = capsys.readouterr()
    return rc, out.err, out.out


def assert_main_error(result, *fragments):
    """The in-process twin of assert_one_line_error."""
    rc, err, out = result
    assert rc == 2, (rc, err, out[-500:])
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for f in fragments:
        assert f in lines[0], (f, lines[0])
