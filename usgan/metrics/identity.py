"""Identity metrics from face_recognition (dlib) 128-D encodings: the paper's ACD and a local verification score.

    from usgan.metrics.identity import encode, acd, local_verification_score
    (e_in, no_face_in), (e_out, _) = encode(inputs_uint8), encode(outputs_uint8)   # (N, 128) and (N,) each
    acd(e_in, e_out)                                               # mean squared distance, lower is better
    local_verification_score(e_in, e_out)                          # mean/std of a 0-100 likeness score

Where the face box comes from (`box`, named in every table that reports ACD):
- "detected" (the default): as `face_recognition.face_encodings(img)[0]` computes it, the paper's tool called
  with its defaults: dlib's HOG detector (upsampling once) finds the face, the 5 landmarks are placed in its
  first box, and that is encoded. A crop where it finds no face is encoded whole instead and counted, so a
  table can say how many there were (face_encodings itself would return nothing for it).
- "whole-crop": the whole crop is the box, as `face_encodings(img, known_face_locations=[(0, w, h, 0)])`.
The tests check both against face_recognition's own calls.

The verification score is a LOCAL STAND-IN for the paper's Face++ FVS, which is a web service that cannot be
reached from here. Its mapping from encoding distance d (plain, not squared) to 0-100 is a logistic curve
centred on face_recognition's own same-person threshold:

    score(d) = 100 / (1 + exp((d - 0.6) / 0.1))

so d = 0.6 (the package's "same person" cut-off) scores 50, d = 0.4 scores 88, d = 0.3 scores 95, d = 0 scores
99.8. It is monotone in d and therefore ranks methods like ACD does; it is not calibrated to Face++'s
confidence and its absolute values must not be compared with the paper's Table 1 FVS column.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..images import to_hwc_uint8

SAME_PERSON_DISTANCE = 0.6      # face_recognition's default tolerance in compare_faces
SCORE_SCALE = 0.1               # width of the logistic; see the module docstring
LOCAL_FVS_LABEL = "local verification score (stand-in for Face++ FVS, not comparable to it)"
ACD_BOXES = {
    "detected": "face box from face_recognition's HOG detector, as face_encodings(img) by default; "
                "crops without a detected face encoded whole",
    "whole-crop": "the whole crop as the face box",
}


def _as_hwc_uint8(images) -> list[np.ndarray]:
    """Accept (N,3,H,W) tensors in uint8 or [-1, 1] floats, or (N,H,W,3) uint8 arrays; return contiguous HWC."""
    arr = to_hwc_uint8(images) if isinstance(images, torch.Tensor) else np.asarray(images)
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"expected (N,3,H,W) tensors or (N,H,W,3) uint8 arrays, got {arr.shape} {arr.dtype}")
    return [np.ascontiguousarray(a) for a in arr]


def check_box(box: str) -> str:
    if box not in ACD_BOXES:
        raise ValueError(f"unknown ACD face box {box!r}; choose one of: {', '.join(ACD_BOXES)}")
    return box


def encode(images, batch_size: int = 32, progress=None, box: str = "detected") -> tuple[np.ndarray, np.ndarray]:
    """128-D encodings of face crops, (N, 128) float64, and (N,) bool: True where no face was detected and the
    crop was encoded whole (always False for box="whole-crop", where nothing is detected)."""
    from ..face_lib import dlib, face_api as fr

    check_box(box)
    imgs = _as_hwc_uint8(images)
    out, no_face = np.zeros((len(imgs), 128)), np.zeros(len(imgs), dtype=bool)
    for s in range(0, len(imgs), batch_size):
        chunk = imgs[s:s + batch_size]
        boxes = []
        for i, im in enumerate(chunk):
            # face_encodings hands the detector's raw rectangles (not trimmed to the image) to the landmarks.
            found = fr.face_detector(im, 1) if box == "detected" else []
            no_face[s + i] = box == "detected" and len(found) == 0
            # Else the same box as face_recognition's _css_to_rect((0, w, h, 0)): the whole crop.
            boxes.append(found[0] if len(found) else dlib.rectangle(0, 0, im.shape[1], im.shape[0]))
        shapes = [dlib.full_object_detections([fr.pose_predictor_5_point(im, b)]) for im, b in zip(chunk, boxes)]
        # num_jitters=1 is face_encodings' default; dlib treats it as "no jitter".
        descriptors = fr.face_encoder.compute_face_descriptor(chunk, shapes, 1)
        out[s:s + len(chunk)] = np.array([np.array(d[0]) for d in descriptors])
        if progress is not None:
            progress.update(len(chunk))
    return out, no_face


def squared_distances(e_a: np.ndarray, e_b: np.ndarray) -> np.ndarray:
    """Per-pair squared Euclidean distance between two (N, 128) encoding arrays."""
    return ((np.asarray(e_a) - np.asarray(e_b)) ** 2).sum(axis=1)


def acd(e_in: np.ndarray, e_out: np.ndarray) -> float:
    """Average content distance: mean squared distance between input and output encodings (lower is better)."""
    return float(squared_distances(e_in, e_out).mean())


def verification_scores(e_a: np.ndarray, e_b: np.ndarray) -> np.ndarray:
    """Per-pair 0-100 local verification score (local stand-in for Face++ FVS; mapping in the module docstring)."""
    d = np.sqrt(squared_distances(e_a, e_b))
    return 100.0 / (1.0 + np.exp((d - SAME_PERSON_DISTANCE) / SCORE_SCALE))


def local_verification_score(e_a: np.ndarray, e_b: np.ndarray) -> dict:
    """Mean and standard deviation of the local score, and the share of pairs under the same-person threshold."""
    s = verification_scores(e_a, e_b)
    d = np.sqrt(squared_distances(e_a, e_b))
    return {"mean": float(s.mean()), "std": float(s.std()), "same_person_rate": float((d < SAME_PERSON_DISTANCE).mean())}


def score_of_distance(d: float) -> float:
    """The local score of one plain encoding distance (for docs and tests)."""
    return 100.0 / (1.0 + math.exp((d - SAME_PERSON_DISTANCE) / SCORE_SCALE))
