"""Face detection and alignment with face_recognition (dlib), shared by data preparation and synthesis.

    faces = detect_faces(Image.open("me.jpg"), size=128)     # aligned crops, non-faces rejected

Aligning puts the eyes where the training crops have them; most "bad results on my photo" reports of the
earlier expression GANs came from unaligned faces. dlib's HOG detector also fires on round face-like things
(the mission patch on the astronaut's suit) and its landmark fitter then draws a face on them anyway, so every
detection must have a face's layout (`face_problem`) and convince dlib's CNN detector (`confirmed`) before
anything edits it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class CropGeometry:
    """Where a square face crop puts the two eye centres, as fractions of its side (centred horizontally)."""
    eye_y: float      # height of the eye line, from the top
    eye_gap: float    # distance between the eye centres

    def __post_init__(self):
        if not (0 < self.eye_y < 1 and 0 < self.eye_gap < 1):
            raise ValueError(f"crop geometry eye_y={self.eye_y}, eye_gap={self.eye_gap}: both must be between 0 and 1")

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"eyes at {self.eye_y * 100:.3g} % of the height, {self.eye_gap * 100:.3g} % of the side apart"


# Our own alignment's default, close to KDEF's framing. Each model's own geometry travels with its weights.
DEFAULT_CROP = CropGeometry(eye_y=0.42, eye_gap=0.34)
# The CNN confirms a detection on a square window twice the box's side, resized so the face spans ~100 px
# (its detector's smallest face is 80 px).
CONFIRM_WINDOW = 200


@dataclass
class AlignedFace:
    crop: Image.Image          # size x size, RGB
    matrix: np.ndarray         # 2x3 affine map from crop pixels to photo pixels (for pasting back)
    box: tuple                 # (top, right, bottom, left) of the detection in the photo
    eyes: np.ndarray           # (2, 2) left and right eye centres in the photo, what video tracking smooths


def _crop_transform(left_eye, right_eye, size, geometry: CropGeometry):
    """Similarity transform (crop -> photo) that puts the two eye centres where the geometry says."""
    le, re = np.asarray(left_eye, float), np.asarray(right_eye, float)
    d = re - le
    scale = np.hypot(*d) / (geometry.eye_gap * size)
    angle = np.arctan2(d[1], d[0])
    cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
    eyes_mid = (le + re) / 2
    crop_mid = np.array([size / 2, geometry.eye_y * size])
    rot = np.array([[cos, -sin], [sin, cos]])
    t = eyes_mid - rot @ crop_mid
    return np.hstack([rot, t[:, None]])


def eye_centres(landmarks: dict) -> np.ndarray:
    """(2, 2): the mean of each eye's six landmarks, left eye first."""
    return np.array([np.mean(landmarks["left_eye"], axis=0), np.mean(landmarks["right_eye"], axis=0)])


def align_eyes(photo: Image.Image, eyes: np.ndarray, size: int = 128,
               geometry: CropGeometry = DEFAULT_CROP) -> tuple[Image.Image, np.ndarray]:
    """Crop + rotate + scale so the eyes sit where the model's crops have them; returns crop and crop->photo map."""
    m = _crop_transform(eyes[0], eyes[1], size, geometry)
    crop = photo.transform((size, size), Image.AFFINE, data=m.flatten().tolist(), resample=Image.BICUBIC)
    return crop, m


def face_problem(landmarks: dict, box: tuple) -> str | None:
    """Why these landmarks cannot be a face (None when they can); box is (top, right, bottom, left)."""
    eyes = eye_centres(landmarks)
    gap = eyes[1] - eyes[0]
    d = float(np.hypot(*gap))
    if d < 1e-6:
        return "both eyes on one spot"
    # Face coordinates: origin between the eyes, x along them, y down the face, eye distance = 1.
    ux = gap / d
    frame = np.array([ux, [-ux[1], ux[0]]])

    def at(name, i=None):
        pts = np.asarray(landmarks[name], float)
        return frame @ ((pts.mean(0) if i is None else pts[i]) - eyes.mean(0)) / d

    brows = max(at("left_eyebrow")[1], at("right_eyebrow")[1])
    nose, chin = at("nose_tip"), at("chin", 8)
    mouth = (at("top_lip") + at("bottom_lip")) / 2
    share = d / max(box[1] - box[3], 1)
    checks = [
        (brows < 0, "eyebrows not above the eyes"),
        (0.25 < nose[1] < 1.3, "nose not below the eyes"),
        (nose[1] + 0.1 < mouth[1] < 2.0, "mouth not below the nose"),
        (chin[1] > mouth[1], "chin not below the mouth"),
        (abs(nose[0]) < 0.6 and abs(mouth[0]) < 0.6, "nose or mouth not between the eyes"),
        (0.25 < share < 0.8, f"eyes {share:.2f} of the box apart"),
    ]
    return next((why for ok, why in checks if not ok), None)


@dataclass
class Candidate:
    box: tuple                 # (top, right, bottom, left) in the photo
    eyes: np.ndarray           # (2, 2) eye centres in the photo


def candidates(photo: Image.Image, upsample: int = 1, max_side: int = 1600, model: str = "hog") -> list[Candidate]:
    """Detections whose landmarks have a face's layout; large photos are detected on a downscaled copy."""
    from ..face_lib import dlib_lock, face_recognition

    k = min(1.0, max_side / max(photo.size))
    small = photo if k == 1.0 else photo.resize((round(photo.width * k), round(photo.height * k)), Image.BILINEAR)
    arr = np.asarray(small.convert("RGB"))
    with dlib_lock:
        boxes = face_recognition.face_locations(arr, upsample, model=model)
        marks = face_recognition.face_landmarks(arr, face_locations=boxes)
    return [Candidate(tuple(int(v / k) for v in box), eye_centres(lm) / k)
            for box, lm in zip(boxes, marks) if face_problem(lm, box) is None]


def confirmed(photo: Image.Image, box: tuple) -> bool:
    """dlib's CNN finds a face in a window around the box.

    Landmark geometry alone cannot tell the astronaut's mission patch from a face (the fitter draws an average
    face on anything: eyes 0.36-0.42 of the box apart, nose and mouth centred, all inside the range real faces
    span), while the CNN, run on this small window only (~0.2 s on a CPU), found every one of 93 LFW faces
    and none of the patches, badges and coins HOG fired on.
    """
    from ..face_lib import dlib_lock, face_api as api

    t, r, b, l = box
    s, cx, cy = max(r - l, b - t), (l + r) / 2, (t + b) / 2
    window = photo.crop((round(cx - s), round(cy - s), round(cx + s), round(cy + s)))
    arr = np.asarray(window.convert("RGB").resize((CONFIRM_WINDOW, CONFIRM_WINDOW), Image.BILINEAR))
    with dlib_lock:
        return len(api.cnn_face_detector(arr, 0)) > 0


def detect_faces(photo: Image.Image, size: int = 128, upsample: int = 1, max_side: int = 1600,
                 model: str = "hog", geometry: CropGeometry = DEFAULT_CROP) -> list[AlignedFace]:
    """Every face in the photo, aligned to the geometry; HOG hits must also convince the CNN (model="cnn": it alone)."""
    photo = photo.convert("RGB")
    faces = []
    for c in candidates(photo, upsample, max_side, model):
        if model == "cnn" or confirmed(photo, c.box):
            faces.append(AlignedFace(*align_eyes(photo, c.eyes, size, geometry), c.box, c.eyes))
    return faces


def center_crop(img: Image.Image, size: int) -> Image.Image:
    """Largest centred square, resized: the paper's preprocessing for its already-framed datasets."""
    w, h = img.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    return img.crop((left, top, left + s, top + s)).resize((size, size), Image.BICUBIC)
