"""Face detection and alignment with face_recognition (dlib), shared by data preparation and synthesis.

Aligning puts the eyes where the training crops have them; most "bad results on my photo" reports of the
earlier expression GANs came from unaligned faces.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

# Where the eye centres land in an aligned square crop, as fractions of its side (close to KDEF's framing).
EYE_Y, EYE_GAP = 0.42, 0.34


@dataclass
class AlignedFace:
    crop: Image.Image          # size x size, RGB
    matrix: np.ndarray         # 2x3 affine map from crop pixels to photo pixels (for pasting back)
    box: tuple                 # (top, right, bottom, left) of the detection in the photo


def _crop_transform(left_eye, right_eye, size):
    """Similarity transform (crop -> photo) that puts the two eye centres at the canonical spots."""
    le, re = np.asarray(left_eye, float), np.asarray(right_eye, float)
    d = re - le
    scale = np.hypot(*d) / (EYE_GAP * size)
    angle = np.arctan2(d[1], d[0])
    cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
    eyes_mid = (le + re) / 2
    crop_mid = np.array([size / 2, EYE_Y * size])
    rot = np.array([[cos, -sin], [sin, cos]])
    t = eyes_mid - rot @ crop_mid
    return np.hstack([rot, t[:, None]])


def align_from_landmarks(photo: Image.Image, landmarks: dict, size: int = 128) -> tuple[Image.Image, np.ndarray]:
    """Crop + rotate + scale so the eyes sit where they do in training crops."""
    left = np.mean(landmarks["left_eye"], axis=0)
    right = np.mean(landmarks["right_eye"], axis=0)
    m = _crop_transform(left, right, size)
    crop = photo.transform((size, size), Image.AFFINE, data=m.flatten().tolist(), resample=Image.BICUBIC)
    return crop, m


def detect_faces(photo: Image.Image, size: int = 128, upsample: int = 1, max_side: int = 1600) -> list[AlignedFace]:
    """Every face in the photo, aligned; large photos are detected on a downscaled copy for speed."""
    from ..face_lib import face_recognition

    photo = photo.convert("RGB")
    k = min(1.0, max_side / max(photo.size))
    small = photo if k == 1.0 else photo.resize((round(photo.width * k), round(photo.height * k)), Image.BILINEAR)
    arr = np.asarray(small)
    boxes = face_recognition.face_locations(arr, number_of_times_to_upsample=upsample)
    marks = face_recognition.face_landmarks(arr, face_locations=boxes)
    faces = []
    for box, lm in zip(boxes, marks):
        lm = {name: [(x / k, y / k) for x, y in pts] for name, pts in lm.items()}
        crop, m = align_from_landmarks(photo, lm, size)
        faces.append(AlignedFace(crop, m, tuple(int(v / k) for v in box)))
    return faces


def center_crop(img: Image.Image, size: int) -> Image.Image:
    """Largest centred square, resized: the paper's preprocessing for its already-framed datasets."""
    w, h = img.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    return img.crop((left, top, left + s, top + s)).resize((size, size), Image.BICUBIC)
