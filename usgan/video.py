"""Change the expression of every face in a video, keeping its frame rate, audio and orientation.

    python -m usgan.synthesize --checkpoint authors --input clip.mp4 --expression happy --out out/

PyAV (FFmpeg in its wheel) decodes one frame at a time; faces are detected in every frame, matched to the
tracks of the frames before, and each track's eye positions go through a one-euro filter, so the aligned crop
(and with it the pasted change) does not jitter with frame-to-frame detection noise yet follows real motion.
A track that misses a few frames keeps its last position instead of flickering off. Every requested
expression is encoded in the same pass (H.264), with each frame's own timestamp; audio packets are copied
unchanged. Only the current frame is held, so memory stays flat in the clip's length.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import UsageError
from .data.align import DEFAULT_CROP, CropGeometry, align_eyes, candidates, confirmed
from .data.expressions import EXPRESSIONS
from .faces import Face, edit_picture, target

VIDEO_EXTS = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v"}
# Containers that take H.264 plus the input's audio as it is; anything else is written as Matroska.
KEEP_SUFFIX = {".mp4": {"aac", "mp3", "alac", "ac3", "opus"}, ".mov": {"aac", "mp3", "alac", "ac3", "pcm_s16le"},
               ".m4v": {"aac", "mp3", "ac3"}, ".mkv": None}


class OneEuro:
    """One-euro filter (Casiez et al., CHI 2012): strong smoothing at rest, little lag in motion."""

    def __init__(self, fps: float, min_cutoff: float = 1.0, beta: float = 5.0, d_cutoff: float = 1.0):
        self.fps, self.min_cutoff, self.beta, self.d_cutoff = fps, min_cutoff, beta, d_cutoff
        self.x = self.dx = None

    def _alpha(self, cutoff: float) -> float:
        return 1.0 / (1.0 + self.fps / (2 * math.pi * cutoff))

    def __call__(self, x: np.ndarray, scale: float = 1.0) -> np.ndarray:
        """Filtered x; speeds are measured in `scale` units per second (the eye distance: size-independent)."""
        if self.x is None:
            self.x, self.dx = x.astype(float), np.zeros_like(x, float)
            return self.x
        self.dx = self.dx + self._alpha(self.d_cutoff) * ((x - self.x) * self.fps / scale - self.dx)
        cutoff = self.min_cutoff + self.beta * float(np.abs(self.dx).max())
        self.x = self.x + self._alpha(cutoff) * (x - self.x)
        return self.x


class Tracker:
    """Eye positions of every face across frames: match, smooth, hold through short misses."""

    def __init__(self, fps: float, hold: int = 3):
        self.fps, self.hold = fps, hold
        self.tracks: list[dict] = []

    def update(self, detected: list[np.ndarray], confirm=lambda i: True) -> list[np.ndarray]:
        """Smoothed (2, 2) eye centres of the faces in this frame; confirm(i) vets a detection that starts a track."""
        free = list(range(len(detected)))
        for tr in self.tracks:
            gap = np.hypot(*(tr["eyes"][1] - tr["eyes"][0]))
            dist = [np.hypot(*(detected[i].mean(0) - tr["eyes"].mean(0))) for i in free]
            # A face moves less than half its eye distance between frames; farther is another face.
            if dist and min(dist) < 0.5 * gap:
                i = free.pop(int(np.argmin(dist)))
                tr["eyes"], tr["missed"] = tr["filter"](detected[i], gap), 0
            else:
                tr["missed"] += 1
        self.tracks = [tr for tr in self.tracks if tr["missed"] <= self.hold]
        for i in free:
            f = OneEuro(self.fps)
            # Rejected detections are tracked too, so a patch that looks like a face is vetted once, not per frame.
            self.tracks.append({"filter": f, "eyes": f(detected[i]), "missed": 0, "face": confirm(i)})
        return [tr["eyes"] for tr in self.tracks if tr["face"]]


def open_video(path: Path):
    """An input container with a video stream, or a one-line UsageError."""
    import av

    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as e:
        raise UsageError(f"cannot read video {path} ({type(e).__name__}); is it a video file?") from None
    if not container.streams.video:
        container.close()
        raise UsageError(f"{path} holds no video stream; pass a video file or a photo")
    return container


def _output_suffix(path: Path, audio) -> str:
    """The input's own container when it takes H.264 and the input's audio as is, else Matroska."""
    suffix = path.suffix.lower()
    if suffix not in KEEP_SUFFIX:
        return ".mkv"
    codecs = KEEP_SUFFIX[suffix]
    return suffix if codecs is None or audio is None or audio.codec_context.name in codecs else ".mkv"


def _copy_packet(pkt, stream):
    """The same compressed audio for another file: muxing takes a packet's data, so each output gets its own."""
    import av

    q = av.Packet(bytes(pkt))
    q.pts, q.dts, q.time_base, q.duration = pkt.pts, pkt.dts, pkt.time_base, pkt.duration
    q.is_keyframe = pkt.is_keyframe
    q.stream = stream
    return q


class Writers:
    """One output file per expression, opened at the first frame (its size and rotation are known only then)."""

    def __init__(self, paths: list[Path], vin, ain):
        self.paths, self.vin, self.ain = paths, vin, ain
        self.files, self.pending = [], []

    def open(self, frame) -> None:
        import av

        for p in self.paths:
            f = av.open(str(p), "w")
            v = f.add_stream("libx264", rate=self.vin.average_rate or self.vin.guessed_rate or 25)
            v.width, v.height = frame.width, frame.height
            # 4:2:0 needs even sides; odd-sized clips keep full chroma rather than lose a pixel row.
            v.pix_fmt = "yuv420p" if frame.width % 2 == 0 and frame.height % 2 == 0 else "yuv444p"
            v.time_base = self.vin.time_base
            if frame.rotation:
                v.set_display_rotation(frame.rotation)
            a = f.add_stream_from_template(self.ain) if self.ain is not None else None
            self.files.append((f, v, a))
        for pkt in self.pending:
            self.audio(pkt)
        self.pending = []

    def audio(self, pkt) -> None:
        if not self.files:          # audio can come before the first video frame
            self.pending.append(pkt)
        for f, _, a in self.files:
            f.mux(_copy_packet(pkt, a))

    def video(self, k: int, rgb: np.ndarray, src) -> None:
        import av

        f, v, _ = self.files[k]
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts, frame.time_base = src.pts, src.time_base
        f.mux(v.encode(frame))

    def close(self) -> None:
        files, self.files = self.files, []
        for f, v, _ in files:
            f.mux(v.encode(None))
            f.close()


def frames(container, path):
    """(decoded video frame, None) and (None, audio packet) in file order."""
    import av

    vin = container.streams.video[0]
    ain = container.streams.audio[0] if container.streams.audio else None
    try:
        for pkt in container.demux(*[s for s in (vin, ain) if s is not None]):
            if pkt.stream.type == "audio":
                if pkt.dts is not None:     # the demuxer's empty flush packet
                    yield None, pkt
                continue
            for frame in pkt.decode():
                yield frame, None
    except av.FFmpegError as e:
        raise UsageError(f"video {path} is damaged ({type(e).__name__}: {e}); re-encode or trim it") from None


def track_faces(tracker: Tracker, upright: Image.Image, size: int, upsample: int, detector: str = "hog",
                geometry: CropGeometry = DEFAULT_CROP) -> list[Face]:
    """This frame's faces, aligned from the tracker's smoothed eyes; a new HOG face must convince the CNN first."""
    found = candidates(upright, upsample, model=detector)
    eyes = tracker.update([c.eyes for c in found], lambda i: detector == "cnn" or confirmed(upright, found[i].box))
    return [Face(*align_eyes(upright, e, size, geometry), None) for e in eyes]


def synthesize_video(G, path: Path, targets: list[int], size: int, out_dir: Path, intensity: float = 1.0,
                     detector: str = "hog", bar=None, geometry: CropGeometry = DEFAULT_CROP) -> dict:
    """Every face of every frame, cropped to the model's geometry, translated to each target; a video per target."""
    container = open_video(path)
    vin = container.streams.video[0]
    ain = container.streams.audio[0] if container.streams.audio else None
    suffix = _output_suffix(path, ain)
    outs = [out_dir / f"{path.stem}_{EXPRESSIONS[k]}{suffix}" for k in targets]
    writers = Writers(outs, vin, ain)
    tracker = Tracker(float(vin.average_rate or vin.guessed_rate or 25))
    conds = [target(k) for k in targets]
    n = faces_seen = 0
    if bar is not None:
        bar.reset(total=vin.frames or None)
    try:
        for frame, pkt in frames(container, path):
            if pkt is not None:
                writers.audio(pkt)
                continue
            if not writers.files:
                writers.open(frame)
            turn = round((frame.rotation or 0) / 90) % 4
            upright = Image.fromarray(np.ascontiguousarray(np.rot90(frame.to_ndarray(format="rgb24"), turn)))
            # Big frames have big faces: skip dlib's 2x upsampling there, it would quadruple detection time.
            faces = track_faces(tracker, upright, size, 1 if max(upright.size) <= 800 else 0, detector, geometry)
            faces_seen += len(faces)
            for k, c in enumerate(conds):
                edited = np.asarray(edit_picture(G, upright, faces, c, intensity))
                writers.video(k, np.ascontiguousarray(np.rot90(edited, -turn)), frame)
            n += 1
            if bar is not None:
                bar.update(1)
    except BaseException:
        writers.close()
        for p in outs:              # no half-written videos left behind
            p.unlink(missing_ok=True)
        raise
    finally:
        container.close()
    writers.close()
    if not n:
        raise UsageError(f"no frame could be decoded from {path}; is it a video file?")
    if not faces_seen:
        for p in outs:
            p.unlink(missing_ok=True)
        raise UsageError(f"no face found in any of the {n} frames of {path}; faces must be upright and "
                         "at least ~40 px between the eyes")
    return {"input": str(path), "frames": n, "face_frames": faces_seen, "written": [p.name for p in outs]}
