"""Uniform re-encoding of stimuli, so neither format, size, metadata nor file name tells methods apart."""

from __future__ import annotations

import io
import secrets
from pathlib import Path

from PIL import Image

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


def reencode_png(src: Path, size: int) -> bytes:
    """RGB PNG of size x size, no metadata; the same source always gives the same bytes."""
    with Image.open(src) as img:
        rgb = img.convert("RGB")
        if rgb.size != (size, size):
            rgb = rgb.resize((size, size), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        # A fresh image carries no text chunks, ICC profile or EXIF from the source.
        Image.frombytes("RGB", rgb.size, rgb.tobytes()).save(out, format="PNG", compress_level=6)
        return out.getvalue()


def new_token() -> str:
    """A random file name stem that says nothing about what it holds."""
    return secrets.token_hex(16)


def store(data: bytes, images_dir: Path) -> str:
    """Write bytes under a fresh random token; returns the file name."""
    images_dir.mkdir(parents=True, exist_ok=True)
    while True:
        name = new_token() + ".png"
        path = images_dir / name
        try:
            with open(path, "xb") as fh:  # "x": never overwrite another build's file
                fh.write(data)
            return name
        except FileExistsError:
            continue
