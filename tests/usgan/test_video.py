"""Video in, video out: same frames, frame rate and audio; faces tracked without jitter; bad clips get one line."""
import av
import numpy as np
import pytest
from PIL import Image

from usgan.synthesize import main
from usgan.video import OneEuro, Tracker

from .eval_helpers import ASTRONAUT, assert_main_error, assert_one_line_error, run_cli, run_main, tiny_run

FPS, RATE, N = 12, 16000, 16


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("ck"))


def make_clip(path, frames, fps=FPS, rotation=0):
    """H.264 + AAC (a 440 Hz tone as long as the video), like a phone clip."""
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=fps)
        v.height, v.width = frames[0].shape[:2]
        v.pix_fmt = "yuv420p"
        if rotation:
            v.set_display_rotation(rotation)
        a = out.add_stream("aac", rate=RATE)
        a.layout = "mono"
        for f in frames:
            out.mux(v.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(v.encode(None))
        n = RATE * len(frames) // fps
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / RATE)).astype(np.float32)
        for s in range(0, n, 1024):
            af = av.AudioFrame.from_ndarray(tone[None, s:s + 1024], format="fltp", layout="mono")
            af.sample_rate, af.pts = RATE, s
            out.mux(a.encode(af))
        out.mux(a.encode(None))
    return path


def face_frames(n=N, side=160):
    """The astronaut's face drifting a pixel per frame, as a slow pan."""
    photo = Image.open(ASTRONAUT).convert("RGB")
    return [np.asarray(photo.crop((120 + i, 20, 320 + i, 220)).resize((side, side), Image.BICUBIC)) for i in range(n)]


def probe(path):
    """(frames decoded, video rate, (audio codec, rate, packets)) of a file."""
    with av.open(str(path)) as f:
        v, a = f.streams.video[0], f.streams.audio[0]
        rate, audio = v.average_rate, (a.codec_context.name, a.rate)
        packets = sum(1 for p in f.demux(a) if p.dts is not None)
    with av.open(str(path)) as f:
        frames = [fr.to_ndarray(format="rgb24").astype(int) for fr in f.decode(video=0)]
    return frames, rate, audio + (packets,)


def test_clip_keeps_frames_rate_and_audio_and_edits_the_face(tiny_ckpt, tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", face_frames())
    out = tmp_path / "out"
    assert main(list(map(str, ["--checkpoint", tiny_ckpt, "--input", clip, "--expression", "happy,sad",
                               "--out", out]))) == 0
    src, rate, audio = probe(clip)
    for name in ("happy", "sad"):
        got, got_rate, got_audio = probe(out / f"clip_{name}.mp4")
        assert (len(got), got_rate, got_audio) == (N, rate, audio) == (N, FPS, ("aac", RATE, audio[2]))
        diff = np.abs(np.stack(got) - np.stack(src)).mean(axis=(0, 3))        # (H, W) over frames and colour
        assert diff[60:100, 60:100].mean() > 5, "the face should change under an untrained generator"
        assert diff[:15].mean() < 3 and diff[:, :10].mean() < 3, "away from the face only codec noise"


def test_sideways_phone_clip_is_edited_upright_and_keeps_its_rotation(tiny_ckpt, tmp_path):
    # Stored sideways with a display rotation of 90 (counter-clockwise), as phones record portrait clips.
    stored = [np.ascontiguousarray(np.rot90(f, -1)) for f in face_frames(6)]
    clip = make_clip(tmp_path / "phone.mov", stored, rotation=90)
    assert main(list(map(str, ["--checkpoint", tiny_ckpt, "--input", clip, "--expression", "happy",
                               "--out", tmp_path]))) == 0
    with av.open(str(tmp_path / "phone_happy.mov")) as f:
        frame = next(f.decode(video=0))
        assert frame.rotation == 90 and (frame.width, frame.height) == (160, 160)


def test_tracker_removes_jitter_but_follows_motion():
    rng = np.random.default_rng(0)
    eyes = np.array([[100.0, 100.0], [140.0, 100.0]])           # 40 px apart
    still = [eyes + rng.normal(0, 1.0, eyes.shape) for _ in range(60)]
    tr = Tracker(fps=25)
    smooth = np.array([tr.update([e])[0] for e in still])
    raw_jitter = np.abs(np.diff(np.array(still), axis=0)).mean()
    assert np.abs(np.diff(smooth[10:], axis=0)).mean() < raw_jitter / 3
    # Moving 2 eye distances a second, the smoothed eyes stay within a tenth of an eye distance.
    tr = Tracker(fps=25)
    moving = [eyes + [80 * i / 25, 0] + rng.normal(0, 1.0, eyes.shape) for i in range(60)]
    lag = np.array([tr.update([e])[0] for e in moving]) - np.array(moving)
    assert np.abs(lag[20:].mean(axis=0)).max() < 4
    # A face missing for a frame keeps its place; gone for longer, its track ends.
    assert len(tr.update([])) == 1 and len(tr.update([]) + tr.update([]) + tr.update([])) == 2
    assert tr.update([]) == []
    filt = OneEuro(fps=25)
    assert np.array_equal(filt(eyes), eyes)


def test_tracker_vets_a_new_track_once():
    calls = []
    tr = Tracker(fps=25)
    patch = np.array([[10.0, 10.0], [30.0, 10.0]])
    for _ in range(5):
        assert tr.update([patch], lambda i: calls.append(i) or False) == []
    assert calls == [0]


def test_bad_clips_get_one_line(tiny_ckpt, tmp_path, capsys):
    blank = make_clip(tmp_path / "wall.mp4", [np.full((64, 64, 3), 128, np.uint8)] * 4)
    proc = run_cli("usgan.synthesize", "--checkpoint", tiny_ckpt, "--input", blank, "--expression", "happy",
                   "--out", tmp_path / "o")
    assert_one_line_error(proc, "no face found in any of the 4 frames")
    assert not (tmp_path / "o" / "wall_happy.mp4").exists()
    (tmp_path / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    assert_main_error(run_main(main, capsys, "--checkpoint", tiny_ckpt, "--input", tmp_path / "broken.mp4",
                               "--expression", "happy", "--out", tmp_path / "o"), "cannot read video")
    assert_main_error(run_main(main, capsys, "--checkpoint", tiny_ckpt, "--input", blank, "--morph", "happy:sad",
                               "--out", tmp_path / "o"), "for a video pass --expression")
