"""Change the expression of every face in your own photos and paste the result back into the photo.

    python -m usgan.synthesize --checkpoint usgan_87_G.ckpt --input me.jpg --expression happy --out out/
    python -m usgan.synthesize --checkpoint runs/usgan-demo --input photos/ --expression all --out out/
    python -m usgan.synthesize --checkpoint 200000-G.ckpt --preset stargan --input crops/ --crop center --out out/

For each photo: faces are detected and aligned with face_recognition exactly as training crops are (eyes at
fixed spots), each crop is translated to all seven expressions, and for every requested expression the
change is warped back through the inverse of the alignment and blended in with a feathered elliptical mask,
so pixels away from the faces stay untouched. Per face it also saves the grid input | afraid ... surprised
at the model's resolution (128 px for the paper's models). `--crop center` (alias `--no-align`) skips
detection for photos that already are face crops, like the datasets' images.

What is pasted is the generator's change to the crop (output minus input, upsampled), added to the original
pixels: at the crop's own resolution this equals pasting the output, and on a large photo it keeps the
photo's own detail where the generator changed nothing. Grayscale photos stay grayscale, RGBA keeps its
alpha, EXIF rotation is applied first. Outputs are identical to the authors' modules (per-image
InstanceNorm statistics, clamping only when saving).
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from .checkpoints import load_generator
from .cli_common import UsageError, add_device_flag, parser, resolve_config, run
from .data.align import center_crop, detect_faces
from .data.expressions import EXPRESSIONS, parse_targets
from .data.readers import IMAGE_EXTS
from .run_outputs import to_uint8

# PIL refuses images above 2x this as possible decompression bombs; real camera photos stay far below.
MAX_PIXELS = 400_000_000


@dataclass
class Photo:
    rgb: Image.Image
    alpha: Image.Image | None
    grayscale: bool


@dataclass
class Face:
    crop: Image.Image          # model-size RGB crop
    matrix: np.ndarray         # 2x3 affine, crop pixel -> photo pixel
    box: tuple | None


def open_photo(path) -> Photo:
    """Decode, apply EXIF orientation, and split into RGB + optional alpha; remember grayscale."""
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            im.load()
    except Image.DecompressionBombError:
        raise UsageError(f"{path} has more than {MAX_PIXELS:,} pixels; downscale it first") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise UsageError(f"cannot read image {path} ({type(e).__name__}); is it a photo file?") from None
    gray = im.mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # 16-bit / float grayscale: rescale to 8 bit before PIL's RGB conversion clips it.
        a = np.asarray(im, dtype=np.float64)
        lo, hi = float(a.min()), float(a.max())
        im = Image.fromarray(((a - lo) / max(hi - lo, 1e-9) * 255).round().astype(np.uint8), "L")
    alpha = None
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA") if im.mode != "LA" else im
        alpha = im.getchannel("A")
    return Photo(im.convert("RGB"), alpha, gray)


def find_faces(photo: Image.Image, size: int, crop: str) -> list[Face]:
    """Aligned crops of every detected face (left to right), or the centred square for already-cropped faces."""
    if crop == "center":
        w, h = photo.size
        s = min(w, h)
        # center_crop takes the square at ((w-s)//2, (h-s)//2) and scales it by s/size.
        m = np.array([[s / size, 0, (w - s) // 2], [0, s / size, (h - s) // 2]], dtype=float)
        return [Face(center_crop(photo, size), m, None)]
    faces = sorted(detect_faces(photo, size), key=lambda f: f.box[3])
    return [Face(f.crop, f.matrix, f.box) for f in faces]


def face_mask(size: int) -> torch.Tensor:
    """Feathered ellipse over the face in crop coordinates, exactly 0 at the crop's border (1, 1, S, S)."""
    yy, xx = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    # Aligned crops put the eyes at 42 % height; the ellipse spans brows to chin and cheek to cheek.
    r = torch.sqrt(((xx / size - 0.5) / 0.46) ** 2 + ((yy / size - 0.53) / 0.47) ** 2)
    t = ((1.0 - r) / 0.3).clamp(0, 1)          # 0 outside r = 1, ramps to 1 over the inner 30 %
    return (t * t * (3 - 2 * t))[None, None]   # smoothstep: no visible edge


@torch.no_grad()
def translate_all(G, crops: list[Image.Image]) -> torch.Tensor:
    """(faces, 7, 3, S, S) float outputs in [-2, 2] for every face and expression, one batch per face."""
    G = getattr(G, "module", G).eval()
    dev = next(G.parameters()).device
    out = []
    for crop in crops:
        x = torch.from_numpy(np.array(crop, dtype=np.uint8)).permute(2, 0, 1).float().div(127.5).sub(1)
        x = x[None].expand(G.c_dim, -1, -1, -1).to(dev)
        out.append(G(x, torch.eye(G.c_dim, device=dev)).float().cpu())
    return torch.stack(out)


def grid_image(crop: Image.Image, outputs: torch.Tensor) -> Image.Image:
    """One row: the input crop, then its seven expressions (clamped only here, as the authors save)."""
    cols = [np.array(crop, dtype=np.uint8)] + [to_uint8(o).permute(1, 2, 0).numpy() for o in outputs]
    return Image.fromarray(np.concatenate(cols, axis=1))


def paste_back(photo: np.ndarray, faces: list[Face], changes: list[torch.Tensor], mask: torch.Tensor) -> np.ndarray:
    """Add each face's change (crop coordinates) into the photo through the inverse affine, feathered by mask."""
    out = photo.astype(np.float32)
    H, W = photo.shape[:2]
    size = mask.shape[-1]
    for face, change in zip(faces, changes):
        m = np.vstack([face.matrix, [0, 0, 1]])
        corners = m @ np.array([[0, size, 0, size], [0, 0, size, size], [1, 1, 1, 1]], dtype=float)
        x0, y0 = max(int(np.floor(corners[0].min())), 0), max(int(np.floor(corners[1].min())), 0)
        x1, y1 = min(int(np.ceil(corners[0].max())), W), min(int(np.ceil(corners[1].max())), H)
        if x1 <= x0 or y1 <= y0:
            continue
        # Photo pixel centres of the region, mapped into the crop, in grid_sample's [-1, 1] (align_corners=False).
        inv = np.linalg.inv(m)[:2]
        ys, xs = np.meshgrid(np.arange(y0, y1) + 0.5, np.arange(x0, x1) + 0.5, indexing="ij")
        cx = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
        cy = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
        grid = torch.from_numpy(np.stack([cx, cy], -1) * (2.0 / size) - 1.0).float()[None]
        src = torch.cat([change[None].float(), mask], 1)          # (1, 4, S, S): change in 0-255 units, mask
        warped = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]
        delta = (warped[:3] * warped[3:]).permute(1, 2, 0).numpy()
        out[y0:y1, x0:x1] += delta
    return np.clip(out.round(), 0, 255).astype(np.uint8)


def synthesize_photo(G, path: Path, targets: list[int], size: int, crop: str, out_dir: Path,
                     fmt: str = "png") -> dict:
    """All outputs of one photo; raises UsageError when it holds no face."""
    photo = open_photo(path)
    faces = find_faces(photo.rgb, size, crop)
    if not faces:
        raise UsageError(f"no face found in {path}; if it is already a cropped face, pass --crop center")
    outputs = translate_all(G, [f.crop for f in faces])
    mask = face_mask(size)
    base = np.array(photo.rgb, dtype=np.uint8)
    written = []
    for i, (face, outs) in enumerate(zip(faces, outputs)):
        p = out_dir / f"{path.stem}_face{i}_grid.png"
        grid_image(face.crop, outs).save(p)
        written.append(p.name)
    for k in targets:
        changes = []
        for face, outs in zip(faces, outputs):
            x = torch.from_numpy(np.array(face.crop, dtype=np.int16)).permute(2, 0, 1)
            # The change as saved images show it: clamped output minus input, in 0-255 units.
            changes.append((to_uint8(outs[k]).to(torch.int16) - x).float())
        result = Image.fromarray(paste_back(base, faces, changes, mask))
        if photo.grayscale:
            result = result.convert("L")
        if photo.alpha is not None:
            result = result.convert("LA" if photo.grayscale else "RGBA")
            result.putalpha(photo.alpha)
        if fmt == "jpg" and result.mode in ("RGBA", "LA"):
            result = result.convert("RGB" if not photo.grayscale else "L")
        p = out_dir / f"{path.stem}_{EXPRESSIONS[k]}.{fmt}"
        result.save(p, quality=95) if fmt == "jpg" else result.save(p)
        written.append(p.name)
    return {"input": str(path), "size": list(photo.rgb.size), "faces": [
        {"box_top_right_bottom_left": f.box, "crop_to_photo": f.matrix.round(4).tolist()} for f in faces],
        "written": written}


def list_inputs(path: Path) -> list[Path]:
    if not path.exists():
        raise UsageError(f"input {path} does not exist; pass a photo or a folder of photos")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
        if not files:
            raise UsageError(f"no images ({', '.join(sorted(IMAGE_EXTS))}) in folder {path}")
        return files
    return [path]


def build_parser():
    ap = parser("python -m usgan.synthesize", __doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True, help="run folder, engine.pt, *-G.ckpt or usgan_87_G.ckpt")
    ap.add_argument("--input", required=True, help="a photo or a folder of photos")
    ap.add_argument("--expression", default="all", help="happy, 'all' or a list like happy,sad")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--crop", choices=("align", "center"), default="align",
                    help="align: detect and align faces (default); center: the photo already is a face crop")
    ap.add_argument("--no-align", dest="crop", action="store_const", const="center", help="same as --crop center")
    ap.add_argument("--format", choices=("png", "jpg"), default="png", help="format of the pasted photos")
    ap.add_argument("--preset", help="config preset for settings the checkpoint lacks (e.g. stargan)")
    ap.add_argument("--config", help="YAML config for settings the checkpoint lacks")
    add_device_flag(ap)
    return ap


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    targets = parse_targets(a.expression)
    if not targets:
        raise UsageError("--expression is empty; pass happy, all or a list like happy,sad")
    inputs = list_inputs(Path(a.input))
    G, ckpt_cfg = load_generator(a.checkpoint)
    cfg = resolve_config(ckpt_cfg, a.config, a.preset)
    G = G.to(a.device)
    size = cfg.model.image_size
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"[synthesize] {len(inputs)} photo(s) -> {', '.join(EXPRESSIONS[k] for k in targets)}; "
          f"{'aligned' if a.crop == 'align' else 'centre'} {size}px crops; model {a.checkpoint}; writing to {out}",
          flush=True)
    report, done = [], 0
    for path in inputs:
        t0 = time.time()
        try:
            r = synthesize_photo(G, path, targets, size, a.crop, out, a.format)
        except UsageError as e:
            if len(inputs) == 1:
                raise
            print(f"[synthesize] skipped: {e}", flush=True)
            continue
        done += 1
        report.append(r)
        print(f"[synthesize] {path.name}: {len(r['faces'])} face(s), {len(r['written'])} file(s), "
              f"{time.time() - t0:.1f} s", flush=True)
    (out / "synthesize.json").write_text(json.dumps({"checkpoint": str(a.checkpoint), "crop": a.crop,
                                                     "expressions": [EXPRESSIONS[k] for k in targets],
                                                     "photos": report}, indent=1))
    if not done:
        raise UsageError(f"no face found in any of the {len(inputs)} photo(s) in {a.input}; "
                         "for already-cropped faces pass --crop center")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
