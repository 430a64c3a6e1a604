"""A contact sheet to look at before training: per source, one face per expression, as training will see it and
as face_recognition aligns it, so a mislabelled folder or a badly framed dataset shows at a glance.

    cells = contact_sheet(data, "check/contact_sheet.png")    # data: a FaceData from load_data
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

from .align import DEFAULT_CROP, CropGeometry
from .expressions import EXPRESSIONS

TILE = 128      # pixels per face on the sheet
TEXT = 16       # height of a line of text


def pick(data, log) -> dict[int, int]:
    """label -> image index of this source: one person in every expression they have, others where they lack one."""
    at = {r.path: i for i, r in enumerate(data.records)}
    idx = [at[r.path] for r in log.records if r.path in at]
    cover = Counter()
    for subject in {data.records[i].subject for i in idx}:
        cover[subject] = len({data.records[i].label for i in idx if data.records[i].subject == subject})
    best = min(cover, key=lambda s: (-cover[s], s)) if cover else None
    chosen = {}
    for i in sorted(idx, key=lambda i: (data.records[i].subject != best, data.records[i].path)):
        chosen.setdefault(data.records[i].label, i)
    return chosen


def aligned_crop(path: str, geometry: CropGeometry = DEFAULT_CROP) -> Image.Image | None:
    """The photo's first face aligned as data.align_faces would crop it; None when no face is found."""
    from .align import detect_faces

    with Image.open(path) as im:
        photo = ImageOps.exif_transpose(im).convert("RGB")
    faces = detect_faces(photo, TILE, geometry=geometry)
    return faces[0].crop if faces else None


def _tile(array) -> Image.Image:
    return Image.fromarray(array.permute(1, 2, 0).numpy()).resize((TILE, TILE), Image.BICUBIC)


def _fit(draw, text: str, font, width: int) -> str:
    """The text, its start cut off until it fits: file names and paths differ at their ends."""
    if draw.textlength(text, font=font) <= width - 4:
        return text
    while len(text) > 1 and draw.textlength("..." + text, font=font) > width - 4:
        text = text[1:]
    return "..." + text


def contact_sheet(data, path, align_faces: bool = False, geometry: CropGeometry = DEFAULT_CROP) -> dict:
    """Write the sheet; returns its path, each cell's source, expression, file and whether a face was aligned."""
    font = ImageFont.load_default(12)
    aligner, both = "face_recognition", not align_faces
    rows = [log for log in data.sources if log.records]
    try:
        from ..face_lib import face_recognition  # noqa: F401  (missing: the sheet shows training crops only)
    except Exception as e:  # FaceLibraryMissing names the install step
        aligner, both = f"not available ({e})", False
    tiles_per_row = 2 if both else 1
    row_h = TEXT + tiles_per_row * (TILE + TEXT)
    sheet = Image.new("RGB", (TILE * len(EXPRESSIONS), TEXT + row_h * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for k, name in enumerate(EXPRESSIONS):
        draw.text((k * TILE + TILE // 2, TEXT // 2), name, fill="black", font=font, anchor="mm")
    cells = []
    for r, log in enumerate(rows):
        y = TEXT + r * row_h
        crop = "aligned crops" if align_faces else "centre crops"
        title = f"{log.spec}: as trained ({crop}, {data.images.shape[-1]} px)" + (", below: aligned" if both else "")
        draw.rectangle([0, y, sheet.width, y + TEXT - 1], fill=(225, 230, 240))
        draw.text((4, y + 2), _fit(draw, title, font, sheet.width), fill="black", font=font)
        for label, i in sorted(pick(data, log).items()):
            x, file = label * TILE, data.records[i].path
            sheet.paste(_tile(data.images[i]), (x, y + TEXT))
            shown = f"{Path(file).parent.name}/{Path(file).name}"      # the folder may be what names the label
            draw.text((x + 2, y + TEXT + TILE + 1), _fit(draw, shown, font, TILE), fill="black", font=font)
            cell = {"source": log.spec, "expression": EXPRESSIONS[label], "file": file}
            if both:
                face = aligned_crop(file, geometry)
                ya = y + TEXT + TILE + TEXT
                if face is None:
                    draw.rectangle([x, ya, x + TILE - 1, ya + TILE - 1], fill=(200, 200, 200))
                    draw.text((x + TILE // 2, ya + TILE // 2), "no face found", fill="black", font=font, anchor="mm")
                else:
                    sheet.paste(face, (x, ya))
                cell["aligned"] = face is not None
            cells.append(cell)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return {"path": str(path), "aligner": aligner, "cells": cells}
