"""Decode, crop and resize every image once into a uint8 tensor file; training reads only that file.

    images, labels = build_cache(records, size=128, cache_dir="data_cache")   # (N,3,S,S) uint8, (N,) int64
"""
from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import DatasetError
from .align import DEFAULT_CROP, CropGeometry, center_crop, detect_faces
from .readers import Record

CACHE_VERSION = 2  # 2: aligned crops come only from CNN-confirmed faces (usgan/data/align.py)


def load_image(path, size: int, align: bool = False, geometry: CropGeometry = DEFAULT_CROP) -> np.ndarray:
    """One dataset image as (3, size, size) uint8: EXIF-upright, RGB, aligned or centre-cropped."""
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            im = im.convert("RGB")
            im.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DatasetError(f"cannot read image {path} ({type(e).__name__}: {e}); replace or remove the file, "
                           "or pass --skip-bad") from None
    if align:
        faces = detect_faces(im, size, geometry=geometry)
        crop = faces[0].crop if faces else center_crop(im, size)
    else:
        crop = center_crop(im, size)
    return np.asarray(crop, dtype=np.uint8).transpose(2, 0, 1).copy()


def _key(records: list[Record], size: int, align: bool, geometry: CropGeometry = DEFAULT_CROP) -> str:
    # The default geometry adds nothing, so caches written before the geometry was a setting stay valid.
    crop = f"|{geometry.eye_y}|{geometry.eye_gap}" if align and geometry != DEFAULT_CROP else ""
    h = hashlib.sha1(f"v{CACHE_VERSION}|{size}|{align}{crop}".encode())
    for r in records:
        st = os.stat(r.path)
        h.update(f"{r.path}|{r.label}|{r.subject}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def build_cache(records: list[Record], size: int, cache_dir="data_cache", align=False, skip_bad=False, progress=True,
                geometry: CropGeometry = DEFAULT_CROP) -> tuple[torch.Tensor, torch.Tensor, list[Record]]:
    """Images, labels and the records actually kept (corrupt files are dropped only with skip_bad)."""
    cache_dir = Path(cache_dir).expanduser()
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"images-{size}px-{_key(records, size, align, geometry)}.pt"
    if path.is_file():
        blob = torch.load(path, weights_only=False)
        return blob["images"], blob["labels"], [Record(**r) for r in blob["records"]]

    from tqdm import tqdm

    def one(r):
        try:
            return load_image(r.path, size, align, geometry)
        except DatasetError as e:
            if skip_bad:
                return e
            raise

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 2)) as pool:
        arrays = list(tqdm(pool.map(one, records), total=len(records), desc=f"caching {size}px images",
                           disable=not progress, unit="img", leave=False))
    bad = [(r, a) for r, a in zip(records, arrays) if isinstance(a, Exception)]
    if bad:
        print(f"[data] skipped {len(bad)} unreadable image(s), e.g. {bad[0][0].path}")
    kept = [(r, a) for r, a in zip(records, arrays) if not isinstance(a, Exception)]
    if not kept:
        raise DatasetError("no readable images left; check the dataset files")
    images = torch.from_numpy(np.stack([a for _, a in kept]))
    labels = torch.tensor([r.label for r, _ in kept], dtype=torch.int64)
    recs = [r for r, _ in kept]
    tmp = path.with_suffix(".tmp")
    torch.save({"images": images, "labels": labels, "records": [r.__dict__ for r in recs]}, tmp)
    os.replace(tmp, path)  # atomic: concurrent workers never read a half-written cache
    return images, labels, recs
