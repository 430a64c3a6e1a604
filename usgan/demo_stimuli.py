"""Write study stimuli: synthetic input faces and what each "method" made of them, as image folders.

    python -m usgan.ablation --preset demo --stimuli my_stimuli      # four trained generators (~40 min)
    python -m usgan.demo_stimuli --out my_stimuli                    # four image operations (seconds)
    python -m usgan.demo_stimuli --out my_stimuli --checkpoint authors   # one more method: those weights' outputs

`usgan.ablation --stimuli` writes real model outputs: the four generators of the paper's ablation (US-GAN, no
skip, 6 blocks, 6 blocks + skip), trained on the synthetic set, translating neutral faces of identities none of
them trained on (seed 1; training uses seed 0). The committed study_app/demo_stimuli is that command's output.
This module's own command writes transparent image operations instead, for trying the study without training:
`target` is the true rendering of the asked-for expression, `blurred` and `recoloured` degrade it, and
`unchanged` returns the input. `--checkpoint` (a named weight or a path) adds the outputs of those weights as a
method folder; weights trained on another crop see each face aligned to their own crop geometry, and their change
is pasted back into the shared input frame. A real study uses the folders that `python -m usgan.synthesize` (or
another method's own tool) writes, in the same layout.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageEnhance, ImageFilter

from .cli_common import add_checkpoint_flag, parser, run
from .data.align import align_eyes
from .data.expressions import EXPRESSIONS
from .data.synthetic import SYNTHETIC_CROP, drawn_eyes, render_face
from .errors import UsageError
from .faces import Face, crops_tensor, paste_outputs, uint8_frames
from .translate import translate

METHODS = {
    "target": lambda inp, tgt: tgt,
    "blurred": lambda inp, tgt: tgt.filter(ImageFilter.GaussianBlur(2.2)),
    "recoloured": lambda inp, tgt: ImageEnhance.Color(tgt).enhance(0.25),
    "unchanged": lambda inp, tgt: inp,
}
DEMO_EXPRESSIONS = ("happy", "sad", "surprised")
DEMO_SEED = 1   # identities no training run has seen: the synthetic training set is rendered from seed 0


def _neutral_faces(out: Path, faces: int, seed: int, size: int):
    """Write inputs/<face>.png (neutral) and yield (face_id, identity, neutral image)."""
    (out / "inputs").mkdir(parents=True, exist_ok=True)
    for f in range(faces):
        face_id, neutral = f"face{f + 1:02d}", render_face(f, "neutral", seed, size)
        neutral.save(out / "inputs" / f"{face_id}.png")
        yield face_id, f, neutral


def write_demo(out, faces: int = 6, expressions=DEMO_EXPRESSIONS, seed: int = DEMO_SEED, size: int = 128):
    """inputs/<face>.png (neutral) and methods/<NAME>/<face>/<expression>.png for the image operations."""
    out = Path(out)
    for face_id, f, neutral in _neutral_faces(out, faces, seed, size):
        for e in expressions:
            target = render_face(f, e, seed, size)
            for name, make in METHODS.items():
                d = out / "methods" / name / face_id
                d.mkdir(parents=True, exist_ok=True)
                make(neutral, target).save(d / f"{e}.png")
    return out


def write_generator_outputs(out, method: str, G, size: int, faces: int = 6, expressions=DEMO_EXPRESSIONS,
                            seed: int = DEMO_SEED, geometry=SYNTHETIC_CROP):
    """inputs/<face>.png (neutral, at G's size) and methods/<method>/<face>/<expression>.png from G.

    G trained on the synthetic set sees the renders as they are; G trained on another crop geometry sees each face
    aligned to it (its drawn eyes), and its change is pasted back into the render.
    """
    out = Path(out)
    labels = torch.tensor([EXPRESSIONS.index(e) for e in expressions])
    for face_id, f, neutral in _neutral_faces(out, faces, seed, size):
        d = out / "methods" / method / face_id
        d.mkdir(parents=True, exist_ok=True)
        if geometry == SYNTHETIC_CROP:
            x = crops_tensor([neutral]).expand(len(labels), -1, -1, -1)
            frames = uint8_frames(translate(G, x, labels, batch_size=1))
        else:
            face = Face(*align_eyes(neutral, drawn_eyes(f, seed, size), size, geometry), None)
            ys = translate(G, crops_tensor([face.crop]).expand(len(labels), -1, -1, -1), labels, batch_size=1)
            frames = [np.asarray(paste_outputs(neutral, [face], y[None])) for y in ys]
        for e, y in zip(expressions, frames):
            Image.fromarray(y).save(d / f"{e}.png")
    return out


def main(argv=None) -> int:
    ap = parser("python -m usgan.demo_stimuli", __doc__.split("\n\n")[0])
    ap.add_argument("--out", default="outputs/demo_stimuli")
    ap.add_argument("--faces", type=int, default=6)
    add_checkpoint_flag(ap)
    ap.add_argument("--method", help="folder name of the checkpoint's outputs (default: its name or folder name)")
    a = ap.parse_args(argv)
    if a.faces < 1:
        raise UsageError(f"--faces {a.faces} must be >= 1")
    if a.checkpoint is None:
        print(f"wrote demo stimuli to {write_demo(a.out, a.faces)} ({', '.join(METHODS)})")
        return 0
    from .checkpoints import load_weights

    w = load_weights(a.checkpoint)
    method = a.method or Path(w.source).stem
    write_generator_outputs(a.out, method, w.G, w.size, a.faces, geometry=w.crop)
    print(f"wrote {Path(a.out) / 'methods' / method}: {a.faces} faces x {', '.join(DEMO_EXPRESSIONS)}. {w.line()}")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
