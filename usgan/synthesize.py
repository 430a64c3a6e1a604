"""Change the expression of every face in your own photos or videos and paste the result back.

    python -m usgan.synthesize --checkpoint authors --input me.jpg --expression happy --out out/
    python -m usgan.synthesize --checkpoint runs/usgan-demo --input photos/ --expression all --out out/
    python -m usgan.synthesize --checkpoint authors --input me.jpg --expression happy --intensity 0.6 --out out/
    python -m usgan.synthesize --checkpoint authors --input me.jpg --morph happy:surprised --steps 12 --out out/
    python -m usgan.synthesize --checkpoint authors --input clip.mp4 --expression happy --out out/
    python -m usgan.synthesize --checkpoint 200000-G.ckpt --preset stargan --input crops/ --crop center --out out/

`--checkpoint` takes a named weight (`demo`, the default; `authors` after `usgan-weights get authors`) or a path.
For each photo: faces are detected (things that only look like faces are rejected), aligned with
face_recognition so the eyes sit where they sat in the model's own training crops (the geometry travels with
the weights: usgan/weights/), translated, and for every requested
expression the change is warped back through the inverse of the alignment and blended in with a feathered
elliptical mask, so pixels away from the faces stay untouched. Per face it also saves the grid
input | afraid ... surprised at the model's resolution. `--crop center` (alias `--no-align`) skips detection
for photos that already are face crops, like the datasets' images.

`--intensity a` scales the expression (0 = the input, 1 = the plain translation, up to 2 exaggerates; see
usgan/faces.py) and writes, per face and expression, a strip and an animation from 0 to a. `--morph FROM:TO`
writes per face a strip and an animation that blends the condition from one expression to the other in
`--steps` steps. A video (.mp4 .mov .mkv .avi .webm .m4v) comes back with every frame edited, its frame rate
and its audio (usgan/video.py). A folder is processed as a batch of photos under one progress bar.

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
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from .checkpoints import load_weights
from .cli_common import add_checkpoint_flag, add_device_flag, parser, resolve_config, run
from .data.align import DEFAULT_CROP, CropGeometry
from .data.expressions import EXPRESSIONS, parse_targets, to_label
from .data.readers import IMAGE_EXTS
from .errors import UsageError
from .faces import crops_tensor, edit, find_faces, open_photo, paste_outputs, restore_mode, strip_image, \
    target, translate_all, uint8_frames
from .video import VIDEO_EXTS, synthesize_video

INTENSITY_RANGE = (-1.0, 2.0)


def parse_morph(spec: str) -> tuple[int, int]:
    """'happy:surprised' as two label indices."""
    parts = spec.split(":")
    if len(parts) != 2 or not all(p.strip() for p in parts):
        raise UsageError(f"bad --morph '{spec}'; write it as FROM:TO, e.g. --morph happy:surprised")
    return to_label(parts[0]), to_label(parts[1])


def check_intensity(a: float) -> float:
    lo, hi = INTENSITY_RANGE
    if not lo <= a <= hi:
        raise UsageError(f"--intensity {a:g} is outside [{lo:g}, {hi:g}]; 0 keeps the face, 1 is the plain "
                         "translation, values a little above 1 exaggerate")
    return a


def sweeps(targets: list[int], intensity: float, morph, steps: int, sweep_intensity: bool) -> list[tuple]:
    """(name, conditions (N, c_dim), intensities (N,)) for every strip and animation to write per face."""
    out = []
    if sweep_intensity:
        ramp = torch.linspace(0, intensity, steps)
        out += [(f"{EXPRESSIONS[k]}_intensity", target(k).expand(steps, -1), ramp) for k in targets]
    if morph:
        t = torch.linspace(0, 1, steps)[:, None]
        conds = torch.lerp(target(morph[0]), target(morph[1]), t)
        out.append((f"{EXPRESSIONS[morph[0]]}-{EXPRESSIONS[morph[1]]}_morph", conds, torch.full((steps,), intensity)))
    return out


def write_animation(frames_rgb: list[np.ndarray], path: Path, fps: float = 8) -> None:
    """An animated GIF (looping) or an MP4 of the frames, by the path's suffix."""
    if path.suffix.lower() == ".gif":
        ims = [Image.fromarray(f) for f in frames_rgb]
        ims[0].save(path, save_all=True, append_images=ims[1:], duration=round(1000 / fps), loop=0)
        return
    import av

    with av.open(str(path), "w") as f:
        v = f.add_stream("libx264", rate=round(fps))
        v.height, v.width = frames_rgb[0].shape[:2]
        v.pix_fmt = "yuv420p" if v.width % 2 == 0 and v.height % 2 == 0 else "yuv444p"
        for rgb in frames_rgb:
            f.mux(v.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")))
        f.mux(v.encode(None))


def write_sweeps(G, stem: str, faces, plan: list[tuple], out_dir: Path, animation: str) -> list[str]:
    """Per face and sweep: a strip PNG (input, then every step) and a looping animation."""
    written = []
    for i, face in enumerate(faces):
        x = crops_tensor([face.crop])
        for name, conds, strengths in plan:
            outs = edit(G, x.expand(len(conds), -1, -1, -1), conds, strengths)
            base = out_dir / f"{stem}_face{i}_{name}"
            strip_image(face.crop, outs).save(base.with_suffix(".png"))
            frames = uint8_frames(outs)
            # There and back again, so the loop does not jump from the last step to the first.
            write_animation(frames + frames[-2:0:-1], base.with_suffix(f".{animation}"))
            written += [base.name + ".png", f"{base.name}.{animation}"]
    return written


def synthesize_photo(G, path: Path, targets: list[int], size: int, crop: str, out_dir: Path, fmt: str = "png",
                     intensity: float = 1.0, plan=(), animation: str = "gif", detector: str = "hog",
                     geometry: CropGeometry = DEFAULT_CROP) -> dict:
    """All outputs of one photo, its faces aligned to the model's crop geometry; UsageError when it holds no face."""
    photo = open_photo(path)
    faces = find_faces(photo.rgb, size, crop, detector, geometry)
    if not faces:
        raise UsageError(f"no face found in {path}; if it is already a cropped face, pass --crop center")
    written = []
    for i, (face, outs) in enumerate(zip(faces, translate_all(G, [f.crop for f in faces]))):
        p = out_dir / f"{path.stem}_face{i}_grid.png"
        strip_image(face.crop, outs).save(p)
        written.append(p.name)
    x = crops_tensor([f.crop for f in faces])
    for k in targets:
        result = restore_mode(paste_outputs(photo.rgb, faces, edit(G, x, target(k), intensity)), photo, fmt)
        p = out_dir / f"{path.stem}_{EXPRESSIONS[k]}.{fmt}"
        result.save(p, quality=95) if fmt == "jpg" else result.save(p)
        written.append(p.name)
    written += write_sweeps(G, path.stem, faces, list(plan), out_dir, animation)
    return {"input": str(path), "size": list(photo.rgb.size), "faces": [
        {"box_top_right_bottom_left": f.box, "crop_to_photo": f.matrix.round(4).tolist()} for f in faces],
        "written": written}


def list_inputs(path: Path) -> list[Path]:
    if not path.exists():
        raise UsageError(f"input {path} does not exist; pass a photo, a video or a folder of photos")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
        if not files:
            raise UsageError(f"no images ({', '.join(sorted(IMAGE_EXTS))}) in folder {path}; "
                             "pass a video file by itself")
        return files
    return [path]


def build_parser():
    ap = parser("python -m usgan.synthesize", __doc__.split("\n\n")[0])
    add_checkpoint_flag(ap)
    ap.add_argument("--input", required=True, help="a photo, a video or a folder of photos")
    ap.add_argument("--expression", help="happy, 'all' (the default without --morph) or a list like happy,sad")
    ap.add_argument("--intensity", type=float, help="expression strength: 0 = input, 1 = full (default), up to 2; "
                    "also writes a strip and an animation from 0 to it per face")
    ap.add_argument("--morph", help="FROM:TO, e.g. happy:surprised: a strip and an animation per face")
    ap.add_argument("--steps", type=int, default=12, help="frames of an intensity or morph strip (default 12)")
    ap.add_argument("--animation", choices=("gif", "mp4"), default="gif", help="format of the animations")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--crop", choices=("align", "center"), default="align",
                    help="align: detect and align faces (default); center: the photo already is a face crop")
    ap.add_argument("--no-align", dest="crop", action="store_const", const="center", help="same as --crop center")
    ap.add_argument("--detector", choices=("hog", "cnn"), default="hog",
                    help="hog: fast, every hit confirmed by the CNN (default); cnn: dlib's CNN alone, slow on a CPU")
    ap.add_argument("--format", choices=("png", "jpg"), default="png", help="format of the pasted photos")
    ap.add_argument("--preset", help="config preset for settings the checkpoint lacks (e.g. stargan)")
    ap.add_argument("--config", help="YAML config for settings the checkpoint lacks")
    add_device_flag(ap)
    return ap


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    intensity = check_intensity(1.0 if a.intensity is None else a.intensity)
    morph = parse_morph(a.morph) if a.morph else None
    targets = parse_targets(a.expression) if a.expression is not None else [] if morph else parse_targets("all")
    if not targets and not morph:
        raise UsageError("--expression is empty; pass happy, all or a list like happy,sad")
    if not 2 <= a.steps <= 240:
        raise UsageError(f"--steps {a.steps} must be between 2 and 240")
    inputs = list_inputs(Path(a.input))
    is_video = len(inputs) == 1 and inputs[0].suffix.lower() in VIDEO_EXTS
    if is_video and morph:
        raise UsageError("--morph makes strips and animations from photos; for a video pass --expression")
    if is_video and a.crop == "center":
        raise UsageError("--crop center is for photos that are face crops; videos are always aligned")
    w = load_weights(a.checkpoint)
    cfg = resolve_config(w.cfg, a)
    G = w.G.to(a.device)
    size = cfg.model.image_size
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    what = ", ".join(EXPRESSIONS[k] for k in targets) or "no pasted photos"
    print(f"[synthesize] {'video' if is_video else f'{len(inputs)} photo(s)'} -> {what} at intensity {intensity:g}"
          f"{f'; morph {a.morph} in {a.steps} steps' if morph else ''}; {size}px crops, {w.crop}; writing to {out}\n"
          f"[synthesize] {w.line()}", flush=True)
    plan = sweeps(targets, intensity, morph, a.steps, a.intensity is not None)
    # One bar for the whole job; tqdm leaves it out when stderr is not a terminal (logs, tests).
    with tqdm(total=len(inputs), unit="frame" if is_video else "photo", disable=None, dynamic_ncols=True) as bar:
        if is_video:
            report = [synthesize_video(G, inputs[0], targets, size, out, intensity, a.detector, bar, w.crop)]
        else:
            report = run_photos(G, inputs, targets, size, out, a, intensity, plan, bar, w.crop)
    (out / "synthesize.json").write_text(json.dumps({
        "checkpoint": w.source, "weights": w.line(), "crop_geometry": w.crop.to_dict(), "crop": a.crop,
        "expressions": [EXPRESSIONS[k] for k in targets],
        "intensity": intensity, "morph": a.morph, "steps": a.steps, "videos" if is_video else "photos": report},
        indent=1))
    if not report:
        raise UsageError(f"no face found in any of the {len(inputs)} photo(s) in {a.input}; "
                         "for already-cropped faces pass --crop center")
    return 0


def run_photos(G, inputs: list[Path], targets, size, out: Path, a, intensity: float, plan, bar,
               geometry: CropGeometry = DEFAULT_CROP) -> list[dict]:
    """Every photo of the job; with several, one that fails is reported and skipped."""
    report = []
    for path in inputs:
        t0 = time.time()
        try:
            r = synthesize_photo(G, path, targets, size, a.crop, out, a.format, intensity, plan, a.animation,
                                 a.detector, geometry)
        except UsageError as e:
            if len(inputs) == 1:
                raise
            tqdm.write(f"[synthesize] skipped: {e}")
            continue
        finally:
            bar.update(1)
        report.append(r)
        tqdm.write(f"[synthesize] {path.name}: {len(r['faces'])} face(s), {len(r['written'])} file(s), "
                   f"{time.time() - t0:.1f} s")
    return report


if __name__ == "__main__":
    sys.exit(run(main))
