"""Helpers for the study_app tests: stimulus folders drawn with PIL, study specs."""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageDraw

from study_app.build import StudySpec
from study_app.settings import EXPRESSIONS

METHODS = ("StarGAN", "STGAN", "GANimation", "USGAN")
FACES = ("face01", "face02")


def draw_face(path: Path, seed: int, size: int = 96) -> None:
    """A distinct small image (random blobs), so every file has different bytes."""
    rng = random.Random(seed)
    img = Image.new("RGB", (size, size), tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(img)
    for _ in range(6):
        x0, y0 = rng.randrange(size // 2), rng.randrange(size // 2)
        draw.ellipse((x0, y0, x0 + rng.randrange(8, size // 2), y0 + rng.randrange(8, size // 2)),
                     fill=tuple(rng.randrange(256) for _ in range(3)))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def make_stimuli(root: Path, faces=FACES, methods=METHODS, expressions=EXPRESSIONS, flat_for=()) -> Path:
    """inputs/<face>.png and methods/<M>/<face>/<expr>.png (or <face>_<expr>.png for methods in flat_for)."""
    seed = 0
    for face in faces:
        draw_face(root / "inputs" / f"{face}.png", seed := seed + 1)
    for method in methods:
        for face in faces:
            for expr in expressions:
                name = f"{face}_{expr}.png" if method in flat_for else f"{face}/{expr}.png"
                draw_face(root / "methods" / method / name, seed := seed + 1)
    return root


def spec_for(stimuli: Path, out: Path, **kw) -> StudySpec:
    """A study spec over a stimulus folder with all four methods."""
    fields = dict(inputs=stimuli / "inputs", methods={m: stimuli / "methods" / m for m in METHODS}, out=out,
                  name="test", seed=7, expressions=("happy", "sad", "angry"), catch_trials=1,
                  trials_per_participant=3, completion_code="DONE123", image_size=64)
    fields.update(kw)
    return StudySpec(**fields)
