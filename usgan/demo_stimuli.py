"""Write the study app's demo stimuli: synthetic input faces and four stand-in "methods" as image folders.

    python -m usgan.demo_stimuli --out study_app/demo_stimuli

The stand-ins are transparent image operations on the synthetic set, not trained models, so the demo study
has something to click on a fresh checkout: `target` is the true rendering of the asked-for expression,
`blurred` and `recoloured` degrade it, and `unchanged` returns the input. A real study uses the folders that
`python -m usgan.synthesize` (or another method's own tool) writes, in the same layout.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from PIL import ImageEnhance, ImageFilter

from .data.synthetic import render_face

METHODS = {
    "target": lambda inp, tgt: tgt,
    "blurred": lambda inp, tgt: tgt.filter(ImageFilter.GaussianBlur(2.2)),
    "recoloured": lambda inp, tgt: ImageEnhance.Color(tgt).enhance(0.25),
    "unchanged": lambda inp, tgt: inp,
}


def write_demo(out, faces: int = 6, expressions=("happy", "sad", "surprised"), seed: int = 1, size: int = 128):
    """inputs/<face>.png (neutral) and methods/<NAME>/<face>/<expression>.png."""
    out = Path(out)
    for f in range(faces):
        face_id = f"face{f + 1:02d}"
        neutral = render_face(f, "neutral", seed, size)
        (out / "inputs").mkdir(parents=True, exist_ok=True)
        neutral.save(out / "inputs" / f"{face_id}.png")
        for e in expressions:
            target = render_face(f, e, seed, size)
            for name, make in METHODS.items():
                d = out / "methods" / name / face_id
                d.mkdir(parents=True, exist_ok=True)
                make(neutral, target).save(d / f"{e}.png")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="study_app/demo_stimuli")
    ap.add_argument("--faces", type=int, default=6)
    a = ap.parse_args(argv)
    print(f"wrote demo stimuli to {write_demo(a.out, a.faces)} ({', '.join(METHODS)})")


if __name__ == "__main__":
    main()
