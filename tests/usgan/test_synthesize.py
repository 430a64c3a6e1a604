"""synthesize on a real photograph: the face changes, the rest stays; the authors' files give their images."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from usgan.authors_reference import authors_all_expressions
from usgan.images import to_uint8
from usgan.synthesize import main, synthesize_photo
from usgan import weights as named
from usgan.checkpoints import load_generator
from usgan.data.synthetic import SYNTHETIC_CROP
from usgan.faces import find_faces

from .eval_helpers import (ASTRONAUT, ASTRONAUT_FACE, MISSION_PATCH, assert_main_error, assert_one_line_error,
                           authors_checkpoint, run_cli, run_main, tiny_run)
from .weights_helpers import authors_in_cache, weights_dir  # noqa: F401 - a fixture


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("ck"))


def _touched_region(faces, size, shape):
    """Pixels inside any face crop's bounding box in the photo (where paste-back may write)."""
    mask = np.zeros(shape[:2], bool)
    for f in faces:
        m = np.vstack([np.array(f["crop_to_photo"]), [0, 0, 1]])
        c = m @ np.array([[0, size, 0, size], [0, 0, size, size], [1, 1, 1, 1]], float)
        x0, y0 = max(int(np.floor(c[0].min())) - 1, 0), max(int(np.floor(c[1].min())) - 1, 0)
        mask[y0:int(np.ceil(c[1].max())) + 1, x0:int(np.ceil(c[0].max())) + 1] = True
    return mask


@pytest.mark.parametrize("weights", ["our run", "authors"])
def test_astronaut_face_changes_and_far_pixels_stay(tiny_ckpt, weights_dir, tmp_path, weights):
    """Our tiny run (64 px, the synthetic set's crop) and the authors' layout (128 px, their tight crop), as a user
    runs them: the face changes, the mission patch and everything away from the face stay bit-identical."""
    if weights == "authors":
        authors_in_cache(weights_dir)
        proc = run_cli("usgan.synthesize", "--checkpoint", "authors", "--input", ASTRONAUT, "--expression", "happy",
                       "--out", tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "Made with the 'authors' weights (usgan_87_G.ckpt), trained on KDEF + RaFD + CFEE" in proc.stdout
    else:
        assert main(list(map(str, ["--checkpoint", tiny_ckpt, "--input", ASTRONAUT, "--expression", "happy", "--out",
                                   tmp_path]))) == 0
    size = 128 if weights == "authors" else 64
    before = np.array(Image.open(ASTRONAUT).convert("RGB")).astype(int)
    after = np.array(Image.open(tmp_path / "astronaut_happy.png")).astype(int)
    assert after.shape == before.shape
    l, t, r, b = ASTRONAUT_FACE
    cx, cy = (l + r) // 2, (t + b) // 2
    centre = np.abs(after - before)[cy - 20:cy + 20, cx - 20:cx + 20]
    assert centre.mean() > 5, "the face centre should change under an untrained generator"
    job = json.loads((tmp_path / "synthesize.json").read_text())
    geometry = named.KNOWN["authors"].crop if weights == "authors" else SYNTHETIC_CROP
    report = job["photos"][0]
    assert len(report["faces"]) == 1, "the mission patch on her suit is not a face"
    assert job["crop_geometry"] == geometry.to_dict()    # and the face was cut (and pasted back) with it:
    photo = Image.open(ASTRONAUT).convert("RGB")
    want = find_faces(photo, size, geometry=geometry)[0].matrix.round(4)
    assert np.allclose(report["faces"][0]["crop_to_photo"], want)
    touched = _touched_region(report["faces"], size, before.shape)
    assert touched[cy, cx] and (~touched).mean() > 0.5
    assert np.array_equal(after[~touched], before[~touched]), "pixels away from the faces must stay untouched"
    t, r, b, l = MISSION_PATCH
    assert np.array_equal(after[t:b, l:r], before[t:b, l:r]), "the mission patch must stay untouched"
    grid = Image.open(tmp_path / "astronaut_face0_grid.png")
    assert grid.size == (size * 8, size)


def test_authors_state_dict_gives_their_images(tmp_path):
    ckpt = tmp_path / "usgan_87_G.ckpt"
    ref = authors_checkpoint(ckpt, conv_dim=8)
    out = tmp_path / "out"
    assert main(list(map(str, ["--checkpoint", ckpt, "--input", ASTRONAUT, "--crop", "center", "--out", out]))) == 0
    grid = np.array(Image.open(out / "astronaut_face0_grid.png"))
    assert grid.shape == (128, 128 * 8, 3)          # the authors' files are 128 px models
    x = torch.from_numpy(grid[:, :128].copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
    ref.train()                                      # as their test loop leaves it
    theirs = authors_all_expressions(ref, x)[:, 0]   # (7, 3, S, S)
    ours = torch.from_numpy(grid[:, 128:].copy()).reshape(128, 7, 128, 3).permute(1, 3, 0, 2)
    assert torch.equal(to_uint8(theirs), ours)
    # Normalising with the running averages instead (what .eval() on the stock module does) gives other images.
    ref.eval()
    assert not torch.equal(to_uint8(authors_all_expressions(ref, x)[:, 0]), ours)


def test_grayscale_rgba_exif_and_large_photos(tiny_ckpt, tmp_path):
    G, cfg = load_generator(tiny_ckpt)
    upright = Image.open(ASTRONAUT).convert("RGB").crop((0, 0, 512, 400))
    inputs = tmp_path / "in"
    inputs.mkdir()
    # Stored sideways with EXIF orientation 6 ("rotate 90 clockwise to view"): only an upright read finds the face.
    exif = Image.Exif()
    exif[0x0112] = 6
    upright.transpose(Image.Transpose.ROTATE_90).save(inputs / "rotated.jpg", exif=exif, quality=95)
    upright.convert("L").save(inputs / "gray.png")
    rgba = upright.convert("RGBA")
    alpha = Image.linear_gradient("L").resize(upright.size)
    rgba.putalpha(alpha)
    rgba.save(inputs / "rgba.png")
    upright.resize((2000, 1562), Image.BICUBIC).save(inputs / "large.jpg", quality=90)
    out = tmp_path / "out"
    out.mkdir()
    for name, mode, size in [("rotated.jpg", "RGB", (512, 400)), ("gray.png", "L", (512, 400)),
                             ("rgba.png", "RGBA", (512, 400)), ("large.jpg", "RGB", (2000, 1562))]:
        r = synthesize_photo(G, inputs / name, [3], 64, "align", out)
        assert len(r["faces"]) >= 1, name
        res = Image.open(out / f"{name.split('.')[0]}_happy.png")
        assert (res.mode, res.size) == (mode, size), name
    assert np.array_equal(np.array(Image.open(out / "rgba_happy.png").getchannel("A")), np.array(alpha))
    # The large photo's face sits where the upright one's does, scaled.
    big = r["faces"][0]["box_top_right_bottom_left"]
    assert abs(big[3] / 2000 * 512 - ASTRONAUT_FACE[0]) < 25


def test_synthesize_cli_errors(tiny_ckpt, tmp_path, capsys):
    blank = tmp_path / "wall.png"
    Image.new("RGB", (200, 160), (128, 128, 128)).save(blank)
    proc = run_cli("usgan.synthesize", "--checkpoint", tiny_ckpt, "--input", blank, "--out", tmp_path / "o")
    assert_one_line_error(proc, "no face found", "--crop center")
    assert_main_error(run_main(main, capsys, "--checkpoint", tiny_ckpt, "--input", tmp_path / "nope.jpg",
                               "--out", tmp_path), "does not exist")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    assert_main_error(run_main(main, capsys, "--checkpoint", tiny_ckpt, "--input", tmp_path / "broken.jpg",
                               "--expression", "happy", "--out", tmp_path / "o"), "cannot read image")
    assert_main_error(run_main(main, capsys, "--checkpoint", tiny_ckpt, "--input", blank, "--expression", "smug",
                               "--out", tmp_path / "o"), "unknown expression 'smug'")
    assert_main_error(run_main(main, capsys, "--checkpoint", tiny_ckpt, "--input", blank, "--crop", "face",
                               "--out", tmp_path / "o"), "--crop")


def test_folder_is_one_job_that_skips_photos_without_faces(tiny_ckpt, tmp_path, capsys):
    photos = tmp_path / "in"
    photos.mkdir()
    Image.open(ASTRONAUT).convert("RGB").save(photos / "a.jpg", quality=95)
    Image.new("RGB", (200, 160), (128, 128, 128)).save(photos / "wall.png")
    rc, err, out = run_main(main, capsys, "--checkpoint", tiny_ckpt, "--input", photos, "--expression", "happy",
                            "--out", tmp_path / "out")
    assert rc == 0 and "skipped: no face found in" in out and "a.jpg: 1 face(s)" in out
    report = json.loads((tmp_path / "out" / "synthesize.json").read_text())
    assert [Path(p["input"]).name for p in report["photos"]] == ["a.jpg"]
    assert_main_error(run_main(main, capsys, "--checkpoint", tiny_ckpt, "--input", photos, "--expression", "",
                               "--out", tmp_path / "out"), "--expression is empty")
