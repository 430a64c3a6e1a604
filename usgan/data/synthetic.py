"""The built-in synthetic faces: every identity in all seven expressions, so any translation's target is known.

    python -m usgan.data.synthetic --grid synthetic_grid.png      # identities x expressions, for a look
    root = materialize("data_cache", identities=120, seed=0)       # writes the authors' AFS..SUS layout

Identity lives in skin tone, face shape, hair, eye colour, background, nose, and a small head pose; the
expression lives only in the mouth, brows, eye opening and cheeks, as a facial-action description would say.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .align import CropGeometry
from .expressions import EXPRESSIONS, FOLDER_CODES

RENDER_VERSION = 3  # bump when the drawing changes, so cached sets are rebuilt

SKIN = [(255, 224, 196), (241, 194, 155), (224, 172, 130), (198, 134, 92), (161, 102, 66), (120, 76, 50), (88, 56, 38)]
HAIR = [(24, 20, 18), (70, 45, 28), (120, 80, 40), (200, 160, 90), (150, 60, 30), (160, 160, 160), (235, 225, 200)]
IRIS = [(70, 45, 25), (40, 90, 160), (60, 120, 70), (110, 110, 120), (25, 20, 15)]

# Per expression: mouth curve (+ smile), mouth open, mouth width, teeth, brow raise, brow inner tilt
# (+ inner end up), eye opening, cheek raise, nose wrinkle. Scaled to the face's half-height.
EXPRESSION_PARAMS = {
    "afraid":    dict(curve=-0.02, open=0.10, width=1.15, teeth=True, brow=0.10, tilt=0.07, eye=1.45, cheek=0, wrinkle=0),
    "angry":     dict(curve=-0.035, open=0.0, width=0.85, teeth=False, brow=-0.07, tilt=-0.10, eye=0.75, cheek=0, wrinkle=0),
    "disgusted": dict(curve=-0.05, open=0.03, width=0.9, teeth=True, brow=-0.04, tilt=-0.04, eye=0.55, cheek=0.3, wrinkle=1),
    "happy":     dict(curve=0.09, open=0.07, width=1.25, teeth=True, brow=0.02, tilt=0.0, eye=0.7, cheek=1, wrinkle=0),
    "neutral":   dict(curve=0.0, open=0.0, width=1.0, teeth=False, brow=0.0, tilt=0.0, eye=1.0, cheek=0, wrinkle=0),
    "sad":       dict(curve=-0.08, open=0.0, width=0.95, teeth=False, brow=0.02, tilt=0.10, eye=0.8, cheek=0, wrinkle=0),
    "surprised": dict(curve=0.0, open=0.22, width=0.65, teeth=False, brow=0.16, tilt=0.0, eye=1.55, cheek=0, wrinkle=0),
}


def identity_params(identity: int, seed: int = 0) -> dict:
    """Everything that makes one synthetic person, drawn from (seed, identity)."""
    r = np.random.default_rng([seed, identity, 7919])
    skin = np.array(SKIN[r.integers(len(SKIN))]) * r.uniform(0.93, 1.05)
    bg = r.uniform(40, 230, 3)
    return dict(
        skin=tuple(int(v) for v in np.clip(skin, 0, 255)),
        hair=HAIR[r.integers(len(HAIR))], hair_style=int(r.integers(4)),
        iris=IRIS[r.integers(len(IRIS))],
        bg=tuple(int(v) for v in bg), shirt=tuple(int(v) for v in r.uniform(20, 220, 3)),
        face_w=r.uniform(0.27, 0.34), face_h=r.uniform(0.36, 0.42), chin=r.uniform(0.0, 0.25),
        eye_gap=r.uniform(0.29, 0.36), eye_y=r.uniform(-0.02, 0.06), eye_size=r.uniform(0.85, 1.15),
        nose=r.uniform(0.8, 1.25), lips=tuple(int(v) for v in np.clip(skin * r.uniform(0.6, 0.8, 3), 0, 255)),
        brow_w=r.uniform(0.8, 1.3), mouth_y=r.uniform(0.52, 0.60),
        dx=r.uniform(-0.04, 0.04), dy=r.uniform(-0.03, 0.03), angle=r.uniform(-7, 7),
    )


# The mean of drawn_eyes over the training set's 120 identities (seed 0): eye line at 44.8 % of the height, eye
# centres 28.7 % of the side apart (each face varies by a few points: identity draws face size and eye spacing).
SYNTHETIC_CROP = CropGeometry(eye_y=0.448, eye_gap=0.287)


def _eye_line(p: dict, S: float) -> tuple[float, float, float, float]:
    """(cx, cy, eye line y, half the eye distance) of a face drawn at S px, before its head-pose rotation."""
    cx, cy = S * (0.5 + p["dx"]), S * (0.47 + p["dy"])
    return cx, cy, cy - S * p["face_h"] * (0.08 - p["eye_y"]), S * p["face_w"] * p["eye_gap"] * 1.45


def drawn_eyes(identity: int, seed: int = 0, size: int = 128) -> np.ndarray:
    """(2, 2) centres of the image-left and image-right eye as render_face draws them, in pixels."""
    p = identity_params(identity, seed)
    cx, cy, ey, half_gap = _eye_line(p, size)
    a = np.deg2rad(p["angle"])   # PIL's rotate turns the picture counter-clockwise about (cx, cy)
    d = np.array([[-half_gap, ey - cy], [half_gap, ey - cy]])
    return np.stack([cx + d[:, 0] * np.cos(a) + d[:, 1] * np.sin(a), cy - d[:, 0] * np.sin(a) + d[:, 1] * np.cos(a)], 1)


def render_face(identity: int, expression: str | int, seed: int = 0, size: int = 128) -> Image.Image:
    """One RGB face of `identity` showing `expression`."""
    e = EXPRESSION_PARAMS[EXPRESSIONS[expression] if isinstance(expression, int) else expression]
    p = identity_params(identity, seed)
    S = size * 2  # draw at twice the size, then downsample for anti-aliasing
    img = Image.new("RGB", (S, S), p["bg"])
    d = ImageDraw.Draw(img)
    cx, cy, ey, egap = _eye_line(p, S)
    fw, fh = S * p["face_w"], S * p["face_h"]
    darker = lambda c, k: tuple(int(v * k) for v in c)  # noqa: E731

    # neck, shoulders, hair behind the head, ears
    d.rectangle([cx - fw * 0.42, cy + fh * 0.6, cx + fw * 0.42, S], fill=darker(p["skin"], 0.9))
    d.ellipse([cx - fw * 1.6, cy + fh * 1.05, cx + fw * 1.6, cy + fh * 2.4], fill=p["shirt"])
    if p["hair_style"] in (1, 3):
        d.ellipse([cx - fw * 1.15, cy - fh * 1.1, cx + fw * 1.15, cy + fh * (0.9 if p["hair_style"] == 1 else 0.4)],
                  fill=p["hair"])
    for s in (-1, 1):
        d.ellipse([cx + s * fw * 0.98 - fw * 0.12, cy - fh * 0.12, cx + s * fw * 0.98 + fw * 0.12, cy + fh * 0.2],
                  fill=darker(p["skin"], 0.95))
    # face: an ellipse whose lower half narrows towards the chin
    d.ellipse([cx - fw, cy - fh, cx + fw, cy + fh * (1 - p["chin"] * 0.3)], fill=p["skin"])
    d.polygon([(cx - fw * 0.9, cy + fh * 0.3), (cx + fw * 0.9, cy + fh * 0.3), (cx, cy + fh * (1.02 + p["chin"] * 0.1))],
              fill=p["skin"])
    # hair on top
    if p["hair_style"] != 2:
        d.chord([cx - fw * 1.04, cy - fh * 1.08, cx + fw * 1.04, cy + fh * 0.25], 180, 360, fill=p["hair"])
        d.chord([cx - fw * 1.02, cy - fh * 0.9, cx + fw * 1.02, cy - fh * 0.25], 0, 180, fill=p["skin"])
    else:
        d.ellipse([cx - fw * 1.02, cy - fh * 0.5, cx - fw * 0.8, cy + fh * 0.05], fill=p["hair"])
        d.ellipse([cx + fw * 0.8, cy - fh * 0.5, cx + fw * 1.02, cy + fh * 0.05], fill=p["hair"])

    # eyes: sclera height follows the expression; iris colour is identity
    ew, eh = fw * 0.24 * p["eye_size"], fh * 0.095 * p["eye_size"] * e["eye"]
    for s in (-1, 1):
        ex = cx + s * egap
        d.ellipse([ex - ew, ey - eh, ex + ew, ey + eh], fill=(250, 250, 248), outline=darker(p["skin"], 0.5), width=2)
        ir = min(ew * 0.55, eh * 0.95 + 1)
        d.ellipse([ex - ir, ey - ir * min(1.0, eh / ir), ex + ir, ey + ir * min(1.0, eh / ir)], fill=p["iris"])
        pr = ir * 0.45
        d.ellipse([ex - pr, ey - pr * min(1.0, eh / ir), ex + pr, ey + pr * min(1.0, eh / ir)], fill=(10, 10, 10))
        if e["cheek"] > 0:  # raised cheeks push the lower lid up: the Duchenne smile
            d.chord([ex - ew * 1.1, ey + eh * 0.2, ex + ew * 1.1, ey + eh * 2.4], 180, 360, fill=p["skin"])

    # brows: raise and inner-end tilt carry most of anger, sadness, fear and surprise
    by = ey - fh * (0.22 - 1.5 * e["brow"])
    bw = fw * 0.3
    for s in (-1, 1):
        inner = (cx + s * (egap - bw * 0.9), by - fh * e["tilt"] * 1.5)
        outer = (cx + s * (egap + bw * 1.1), by + fh * e["tilt"] * 0.45)
        d.line([inner, outer], fill=darker(p["hair"], 0.7), width=max(4, int(S * 0.036 * p["brow_w"])))

    # nose, and the wrinkle of disgust
    ny = cy + fh * 0.28
    nw = fw * 0.13 * p["nose"]
    d.line([(cx, ey + eh * 0.5), (cx - nw * 0.5, ny), (cx + nw * 0.6, ny)], fill=darker(p["skin"], 0.7), width=3)
    if e["wrinkle"]:
        for k in (0.45, 0.6):
            d.arc([cx - nw * 1.3, ey + fh * k * 0.25, cx + nw * 1.3, ey + fh * (k * 0.25 + 0.1)], 200, 340,
                  fill=darker(p["skin"], 0.55), width=max(4, int(S * 0.016)))
    if e["cheek"] >= 1:
        for s in (-1, 1):
            bx = cx + s * fw * 0.55
            d.ellipse([bx - fw * 0.14, ny - fh * 0.05, bx + fw * 0.14, ny + fh * 0.08], fill=_blend(p["skin"], (230, 80, 80), 0.45))

    # mouth: corners rise with `curve`, the lips part with `open`
    my, mw = cy + fh * p["mouth_y"], fw * 0.52 * e["width"]
    curve, opening = fh * e["curve"] * 2.2, fh * e["open"] * 1.5
    ts = np.linspace(-1, 1, 25)
    centre = [(cx + t * mw, my + curve * (1 - t * t) - curve * 0.5 - (fh * 0.02 * t if e["wrinkle"] else 0)) for t in ts]
    upper = [(x, y - opening * 0.35 * (1 - t * t)) for (x, y), t in zip(centre, ts)]
    lower = [(x, y + opening * 0.9 * (1 - t * t) ** 0.7) for (x, y), t in zip(centre, ts)]
    if opening > 0:
        d.polygon(upper + lower[::-1], fill=(60, 20, 25))
        if e["teeth"]:
            teeth = [(x, y + opening * 0.25 * (1 - t * t)) for (x, y), t in zip(upper, ts)]
            d.polygon(upper + teeth[::-1], fill=(245, 245, 240))
        d.line(upper, fill=p["lips"], width=max(4, int(S * 0.03)))
        d.line(lower, fill=p["lips"], width=max(5, int(S * 0.038)))
    else:
        d.line(centre, fill=p["lips"], width=max(6, int(S * 0.042)))

    img = img.rotate(p["angle"], resample=Image.BICUBIC, center=(cx, cy), fillcolor=p["bg"])
    return img.resize((size, size), Image.LANCZOS)


def _blend(a, b, k):
    return tuple(int(x * (1 - k) + y * k) for x, y in zip(a, b))


def folder_name(identities: int, seed: int, size: int) -> str:
    return f"synthetic-v{RENDER_VERSION}-s{seed}-n{identities}-{size}px"


def materialize(cache_dir="data_cache", identities: int = 120, seed: int = 0, size: int = 128, progress=True) -> Path:
    """Write the set in the authors' layout (AFS/id007_AFS.png ...) once; later calls reuse it."""
    root = Path(cache_dir).expanduser() / folder_name(identities, seed, size)
    done = root / "complete.json"
    if done.is_file():
        return root
    from tqdm import tqdm
    for code in FOLDER_CODES:
        (root / code).mkdir(parents=True, exist_ok=True)
    jobs = [(i, k) for i in range(identities) for k in range(len(EXPRESSIONS))]
    for i, k in tqdm(jobs, desc="rendering synthetic faces", disable=not progress, unit="img", leave=False):
        render_face(i, k, seed, size).save(root / FOLDER_CODES[k] / f"id{i:04d}_{FOLDER_CODES[k]}.png")
    done.write_text(json.dumps({"identities": identities, "seed": seed, "size": size, "version": RENDER_VERSION}))
    return root


def grid(identities=8, seed: int = 0, size: int = 128, first: int = 0) -> Image.Image:
    """Rows of identities, columns of the seven expressions in label order."""
    g = Image.new("RGB", (size * len(EXPRESSIONS), size * identities), "white")
    for row in range(identities):
        for k in range(len(EXPRESSIONS)):
            g.paste(render_face(first + row, k, seed, size), (k * size, row * size))
    return g


def main(argv=None):
    ap = argparse.ArgumentParser(description="Render the synthetic face set or a grid of it.")
    ap.add_argument("--grid", default="synthetic_grid.png", help="PNG to write (identities x expressions)")
    ap.add_argument("--identities", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=int, default=128)
    a = ap.parse_args(argv)
    grid(a.identities, a.seed, a.size).save(a.grid)
    print(f"wrote {a.grid}: {a.identities} identities x {len(EXPRESSIONS)} expressions ({', '.join(EXPRESSIONS)})")


if __name__ == "__main__":
    main()
