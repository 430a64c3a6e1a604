"""Edit the faces of one picture: aligned crops in, the generator's change pasted back; intensity and morphs.

    from usgan.checkpoints import load_weights
    from usgan.faces import edit_picture, find_faces, open_photo, target
    w = load_weights("authors")              # or "demo", a run folder, a *-G.ckpt
    photo = open_photo("me.jpg")
    faces = find_faces(photo.rgb, w.size, geometry=w.crop)    # cropped as the model's training faces were
    half_happy = edit_picture(w.G, photo.rgb, faces, target("happy"), intensity=0.5)     # PIL image
    between = edit_picture(w.G, photo.rgb, faces, target("happy", "surprised", 0.3))

US-GAN's ultimate skip makes its output x + r(x, c), so x + a * r(x, c) scales the expression: a = 0 is the
input itself, 1 the plain translation, a little above 1 exaggerates. It is computed as lerp(x, G(x, c), a),
which is exactly that for US-GAN and, for a StarGAN generator (no skip), the same blend of input and output.
Morphs mix the condition, c = (1 - t) c_from + t c_to, which the generator has never seen for 0 < t < 1 but
which moves smoothly between the two expressions; t = 0 and t = 1 are exactly the two plain translations.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import UsageError
from .data.align import DEFAULT_CROP, CropGeometry, center_crop, detect_faces
from .data.expressions import EXPRESSIONS, to_label
from .images import to_float, to_uint8
from .translate import translate, unwrap

# PIL refuses images above 2x this as possible decompression bombs; real camera photos stay far below.
MAX_PIXELS = 400_000_000
HIGH_BIT_MODES = ("I", "I;16", "I;16B", "I;16L", "F")


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


def open_photo(path, name: str | None = None) -> Photo:
    """Decode a path (or a file object called name), apply EXIF orientation, split RGB + alpha; remember grayscale."""
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    name = name or path
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            im.load()
    except Image.DecompressionBombError:
        raise UsageError(f"{name} has more than {MAX_PIXELS:,} pixels; downscale it first") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise UsageError(f"cannot read image {name} ({type(e).__name__}); is it a photo file?") from None
    gray = im.mode in ("1", "L", "LA") + HIGH_BIT_MODES
    if im.mode in HIGH_BIT_MODES:
        # 16-bit / float grayscale: rescale to 8 bit before PIL's RGB conversion clips it.
        a = np.asarray(im, dtype=np.float64)
        lo, hi = float(a.min()), float(a.max())
        im = Image.fromarray(((a - lo) / max(hi - lo, 1e-9) * 255).round().astype(np.uint8), "L")
    alpha = None
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA") if im.mode != "LA" else im
        alpha = im.getchannel("A")
    return Photo(im.convert("RGB"), alpha, gray)


def restore_mode(result: Image.Image, photo: Photo, fmt: str = "png") -> Image.Image:
    """Give an edited RGB picture the photo's grayscale and alpha back (JPEG has no alpha)."""
    if photo.grayscale:
        result = result.convert("L")
    if photo.alpha is not None and fmt != "jpg":
        result = result.convert("LA" if photo.grayscale else "RGBA")
        result.putalpha(photo.alpha)
    return result


def find_faces(photo: Image.Image, size: int, crop: str = "align", detector: str = "hog",
               geometry: CropGeometry = DEFAULT_CROP) -> list[Face]:
    """Crops of every face (left to right) aligned to the geometry, or the centred square of a photo that is a crop."""
    if crop == "center":
        w, h = photo.size
        s = min(w, h)
        # center_crop takes the square at ((w-s)//2, (h-s)//2) and scales it by s/size.
        m = np.array([[s / size, 0, (w - s) // 2], [0, s / size, (h - s) // 2]], dtype=float)
        return [Face(center_crop(photo, size), m, None)]
    faces = sorted(detect_faces(photo, size, model=detector, geometry=geometry), key=lambda f: f.box[3])
    return [Face(f.crop, f.matrix, f.box) for f in faces]


def target(expression, to=None, t: float = 1.0, c_dim: int = len(EXPRESSIONS)) -> torch.Tensor:
    """Condition vector: one expression, or the mix (1 - t) * from + t * to for a morph."""
    c_from = F.one_hot(torch.tensor(to_label(expression)), c_dim).float()
    if to is None:
        return c_from
    # lerp is exact at both ends, so t = 0 and t = 1 give the plain one-hot conditions.
    return torch.lerp(c_from, F.one_hot(torch.tensor(to_label(to)), c_dim).float(), float(t))


def crops_tensor(crops: list[Image.Image]) -> torch.Tensor:
    """(N, 3, S, S) in [-1, 1], the generator's input range."""
    x = torch.stack([torch.from_numpy(np.array(c, dtype=np.uint8)).permute(2, 0, 1) for c in crops])
    return to_float(x)


@torch.no_grad()
def edit(G, x: torch.Tensor, c: torch.Tensor, intensity=1.0) -> torch.Tensor:
    """x + a * (G(x, c) - x) for a batch x (N, 3, S, S), condition(s) c (c_dim,) or (N, c_dim), a a float or (N,)."""
    c = c.expand(len(x), -1) if c.dim() == 1 else c
    a = torch.as_tensor(intensity, dtype=torch.float32).expand(len(x))
    # One image per forward: a face must come out the same alone, with others, or as one step of a morph.
    y = translate(G, x, c, batch_size=1).float().cpu()
    # lerp returns x itself at a = 0 and G's output itself at a = 1, so both ends are bit-exact.
    return torch.lerp(x.float(), y, a.view(-1, 1, 1, 1))


def translate_all(G, crops: list[Image.Image]) -> torch.Tensor:
    """(faces, 7, 3, S, S) float outputs for every face and expression, one batch per face."""
    eye = torch.eye(unwrap(G).c_dim)
    return torch.stack([edit(G, crops_tensor([crop]).expand(len(eye), -1, -1, -1), eye) for crop in crops])


def strip_image(crop: Image.Image, outputs: torch.Tensor) -> Image.Image:
    """One row: the input crop, then each output (clamped only here, as the authors save)."""
    return Image.fromarray(np.concatenate([np.array(crop, dtype=np.uint8)] + uint8_frames(outputs), axis=1))


def uint8_frames(outputs: torch.Tensor) -> list[np.ndarray]:
    """(N, 3, S, S) generator outputs as N HxWx3 uint8 arrays."""
    return list(to_uint8(outputs).permute(0, 2, 3, 1).numpy())


def face_mask(size: int) -> torch.Tensor:
    """Feathered ellipse over the face in crop coordinates, exactly 0 at the crop's border (1, 1, S, S)."""
    yy, xx = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    # Nearly the whole crop, whatever its geometry: brows to chin and cheek to cheek in the loosest (eyes at 45 %
    # height, 29 % apart), the eyes and mouth well inside full weight in the tightest (the authors': 36 %, 43 %).
    r = torch.sqrt(((xx / size - 0.5) / 0.46) ** 2 + ((yy / size - 0.53) / 0.47) ** 2)
    t = ((1.0 - r) / 0.3).clamp(0, 1)          # 0 outside r = 1, ramps to 1 over the inner 30 %
    return (t * t * (3 - 2 * t))[None, None]   # smoothstep: no visible edge


def change(crop: Image.Image, output: torch.Tensor) -> torch.Tensor:
    """The change as saved images show it: clamped output minus input, in 0-255 units (3, S, S)."""
    x = torch.from_numpy(np.array(crop, dtype=np.int16)).permute(2, 0, 1)
    return (to_uint8(output).to(torch.int16) - x).float()


def paste_back(photo: np.ndarray, faces: list[Face], changes: list[torch.Tensor], mask: torch.Tensor) -> np.ndarray:
    """Add each face's change (crop coordinates) into the photo through the inverse affine, feathered by mask."""
    out = photo.astype(np.float32)
    H, W = photo.shape[:2]
    size = mask.shape[-1]
    for face, delta in zip(faces, changes):
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
        src = torch.cat([delta[None].float(), mask], 1)          # (1, 4, S, S): change in 0-255 units, mask
        warped = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]
        out[y0:y1, x0:x1] += (warped[:3] * warped[3:]).permute(1, 2, 0).numpy()
    return np.clip(out.round(), 0, 255).astype(np.uint8)


def paste_outputs(photo: Image.Image, faces: list[Face], outputs: torch.Tensor) -> Image.Image:
    """The photo with each face's output (one per face, crop coordinates) pasted back."""
    changes = [change(f.crop, o) for f, o in zip(faces, outputs)]
    size = faces[0].crop.size[0] if faces else 1
    return Image.fromarray(paste_back(np.array(photo.convert("RGB"), dtype=np.uint8), faces, changes, face_mask(size)))


def edit_picture(G, photo: Image.Image, faces: list[Face], c: torch.Tensor, intensity: float = 1.0) -> Image.Image:
    """The photo with every face edited towards condition c at the given intensity."""
    if not faces:
        return photo.convert("RGB")
    return paste_outputs(photo, faces, edit(G, crops_tensor([f.crop for f in faces]), c, intensity))
