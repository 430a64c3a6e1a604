"""The crop a model expects travels with its weights: the authors', the synthetic set's, and what a run records."""
import json

import numpy as np
from PIL import Image

from usgan import weights as named
from usgan.checkpoints import load_weights
from usgan.config import preset
from usgan.data import load_data, training_crop
from usgan.data.align import DEFAULT_CROP, CropGeometry, eye_centres
from usgan.data.synthetic import SYNTHETIC_CROP, drawn_eyes, render_face
from usgan.faces import find_faces
from usgan.video import Tracker, track_faces

from .eval_helpers import ASTRONAUT, tiny_run
from .weights_helpers import authors_in_cache, weights_dir  # noqa: F401 - a fixture


def measured_eyes(crop: Image.Image) -> tuple[float, float, float]:
    """(eye line height, eye gap, eye midpoint x) of the one face in a crop, from face_recognition's landmarks."""
    import face_recognition

    a = np.asarray(crop)
    boxes = face_recognition.face_locations(a, 1)
    assert len(boxes) == 1, boxes
    e = eye_centres(face_recognition.face_landmarks(a, boxes)[0]) / crop.size[0]
    return float(e[:, 1].mean()), float(np.hypot(*(e[1] - e[0]))), float(e[:, 0].mean())


def test_authors_crop_of_the_astronaut_puts_the_eyes_where_their_crops_have_them(weights_dir):
    authors_in_cache(weights_dir)
    w = load_weights("authors")
    photo = Image.open(ASTRONAUT).convert("RGB")
    (face,) = find_faces(photo, w.size, geometry=w.crop)
    y, gap, x = measured_eyes(face.crop)
    # Their own test crops: eyes at 35-38 % of the height, 42-44.5 % apart, centred.
    assert abs(y - 0.36) < 0.02 and abs(gap - 0.43) < 0.02 and abs(x - 0.5) < 0.02, (y, gap, x)
    y0, gap0, _ = measured_eyes(find_faces(photo, w.size)[0].crop)     # our default crop is looser
    assert y0 - 0.36 > 0.04 and 0.43 - gap0 > 0.06, (y0, gap0)


def test_video_frames_are_aligned_to_the_models_geometry():
    frame = Image.open(ASTRONAUT).convert("RGB").crop((80, 0, 360, 280))
    for geometry in (named.KNOWN["authors"].crop, SYNTHETIC_CROP):
        tracker = Tracker(fps=12)
        (face,) = track_faces(tracker, frame, 128, 1, "hog", geometry)
        eyes = tracker.tracks[0]["eyes"]
        m = np.vstack([face.matrix, [0, 0, 1]])
        in_crop = (np.linalg.inv(m) @ np.c_[eyes, [1, 1]].T)[:2].T / 128      # where the crop has the eyes
        assert np.allclose(in_crop, [[0.5 - geometry.eye_gap / 2, geometry.eye_y],
                                     [0.5 + geometry.eye_gap / 2, geometry.eye_y]], atol=1e-6)


def test_the_synthetic_geometry_is_the_drawings():
    eyes = np.array([drawn_eyes(i, 0, 128) for i in range(120)]) / 128
    assert abs(eyes[:, :, 1].mean() - SYNTHETIC_CROP.eye_y) < 0.001
    assert abs(np.hypot(*(eyes[:, 1] - eyes[:, 0]).T).mean() - SYNTHETIC_CROP.eye_gap) < 0.001
    for i in range(4):     # drawn_eyes is where the pupils really are (pure black, drawn at 512 px)
        a = np.asarray(render_face(i, "neutral", 0, 512)).astype(int)
        ys, xs = np.nonzero(np.abs(a - 10).sum(2) < 20)
        e = drawn_eyes(i, 0, 512)
        left = xs < e[:, 0].mean()
        got = [[xs[left].mean(), ys[left].mean()], [xs[~left].mean(), ys[~left].mean()]]
        assert np.abs(np.array(got) - e).max() < 1.5, (got, e)
    record = json.loads(named.weight_path("demo").with_suffix(".json").read_text())["crop"]
    assert CropGeometry(**record) == named.KNOWN["demo"].crop == SYNTHETIC_CROP


def test_a_run_records_its_geometry_beside_its_config_and_loading_reads_it_back(tmp_path):
    run = tiny_run(tmp_path)
    g_json = run / "0-G.json"
    assert CropGeometry(**json.loads(g_json.read_text())["crop"]) == SYNTHETIC_CROP
    assert load_weights(str(run)).crop == SYNTHETIC_CROP                  # from engine.pt
    assert load_weights(str(run / "0-G.ckpt")).crop == SYNTHETIC_CROP     # from the JSON beside the G file
    g_json.write_text(json.dumps({"crop": {"eye_y": 0.4, "eye_gap": 0.3}, "trained_on": "my faces"}))
    w = load_weights(str(run / "0-G.ckpt"))
    assert w.crop == CropGeometry(0.4, 0.3) and "trained on my faces" in w.line()
    cfg = preset("paper", **{"data.align_faces": True, "data.align_eyes": "0.36,0.43"})
    assert training_crop(cfg.data) == CropGeometry(0.36, 0.43)
    assert training_crop(preset("paper").data) == DEFAULT_CROP


def test_training_crops_come_from_the_same_geometry(tmp_path):
    photo = Image.open(ASTRONAUT).convert("RGB")
    for k in range(2):
        (tmp_path / "faces" / "happy").mkdir(parents=True, exist_ok=True)
        photo.save(tmp_path / "faces" / "happy" / f"person{k}.png")
    for eyes in ([0.42, 0.34], [0.36, 0.43]):      # one cache folder: a crop of one geometry never serves another
        cfg = preset("paper", **{"data.sources": f"folder:{tmp_path / 'faces'}", "data.align_faces": True,
                                 "data.align_eyes": ",".join(map(str, eyes)), "data.test_fraction": 0.5,
                                 "data.cache_dir": str(tmp_path / "cache")})
        data = load_data(cfg.data, 128, progress=False)
        want = np.asarray(find_faces(photo, 128, geometry=CropGeometry(*eyes))[0].crop)
        assert np.array_equal(data.images[0].permute(1, 2, 0).numpy(), want), eyes


def test_study_stimuli_from_named_weights_are_cropped_their_way_and_pasted_back(weights_dir, tmp_path, capsys):
    from usgan.demo_stimuli import main as stimuli_main

    from .eval_helpers import run_main

    authors_in_cache(weights_dir)
    rc, err, out = run_main(stimuli_main, capsys, "--checkpoint", "authors", "--faces", "2", "--out", tmp_path)
    assert rc == 0 and "Made with the 'authors' weights" in out, err
    for face in ("face01", "face02"):
        before = np.asarray(Image.open(tmp_path / "inputs" / f"{face}.png")).astype(int)
        after = np.asarray(Image.open(tmp_path / "methods" / "authors" / face / "happy.png")).astype(int)
        assert after.shape == before.shape == (128, 128, 3)
        # Their crop is tighter than the drawing's framing: the change lands on the face, the corners stay.
        assert np.array_equal(after[:8, :8], before[:8, :8]) and np.abs(after - before)[40:90, 40:90].mean() > 5
    rc, err, _ = run_main(stimuli_main, capsys, "--checkpoint", "nobody/nowhere", "--out", tmp_path)
    assert rc == 2 and "does not exist" in err
