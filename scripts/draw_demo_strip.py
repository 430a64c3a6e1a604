"""Redraw the README's picture (docs/demo-strip.png) from the shipped demo weights.

    python scripts/draw_demo_strip.py                  # after scripts/ship_weights.py

Three faces of the synthetic set's held-out people (the first three test identities, in neutral, happy and
sad), each through `python -m usgan.synthesize --crop center --expression all`, the README's own command; its
per-face grids (input, then the seven expressions) stacked and shown at 2x, pixels kept square.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PIL import Image

from usgan import synthesize
from usgan.config import preset
from usgan.data import load_data
from usgan.data.synthetic import render_face

STRIP = Path(__file__).resolve().parent.parent / "docs" / "demo-strip.png"
EXPRESSIONS = ("neutral", "happy", "sad")


def main(out: Path = STRIP) -> None:
    cfg = preset("demo")
    data = load_data(cfg.data, cfg.model.image_size)
    people = sorted({data.records[i].subject for i in data.index("test").tolist()})[:len(EXPRESSIONS)]
    with tempfile.TemporaryDirectory() as tmp:
        faces, grids_dir = Path(tmp) / "faces", Path(tmp) / "out"
        faces.mkdir()
        names = []
        for k, (person, expression) in enumerate(zip(people, EXPRESSIONS)):
            identity = int(person.rsplit("id", 1)[1])
            names.append(f"{k}_{expression}")
            render_face(identity, expression, cfg.data.synthetic_seed, 128).save(faces / f"{names[-1]}.png")
        code = synthesize.main(["--input", str(faces), "--crop", "center", "--expression", "all", "--out", str(grids_dir)])
        if code:
            sys.exit(code)
        grids = [Image.open(grids_dir / f"{name}_face0_grid.png").convert("RGB") for name in names]
    w, h = grids[0].size
    strip = Image.new("RGB", (w, h * len(grids)))
    for k, grid in enumerate(grids):
        strip.paste(grid, (0, h * k))
    strip.resize((2 * w, 2 * h * len(grids)), Image.NEAREST).save(out)
    print(f"wrote {out} ({', '.join(people)})")


if __name__ == "__main__":
    main()
