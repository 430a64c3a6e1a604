"""Intensity and morphs: 0 is the input, the change grows with the intensity, a morph's ends are translations."""
import numpy as np
import pytest
import torch
from PIL import Image

from usgan.checkpoints import load_generator
from usgan.faces import crops_tensor, edit, edit_picture, find_faces, target
from usgan.models import Generator
from usgan.synthesize import main

from .eval_helpers import ASTRONAUT, assert_main_error, run_main, tiny_run

SIZE = 64


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("ck"))


@pytest.fixture(scope="module")
def astronaut():
    return Image.open(ASTRONAUT).convert("RGB")


@pytest.fixture(scope="module")
def faces(astronaut):
    return find_faces(astronaut, SIZE)


def columns(strip: Image.Image) -> list[np.ndarray]:
    a = np.asarray(strip).astype(int)
    return [a[:, i:i + SIZE] for i in range(0, a.shape[1], SIZE)]


def test_intensity_zero_returns_the_input_exactly(tiny_ckpt, tmp_path):
    assert main(list(map(str, ["--checkpoint", tiny_ckpt, "--input", ASTRONAUT, "--expression", "happy,sad",
                               "--intensity", "0", "--steps", "2", "--out", tmp_path]))) == 0
    before = np.asarray(Image.open(ASTRONAUT).convert("RGB"))
    for name in ("happy", "sad"):
        assert np.array_equal(np.asarray(Image.open(tmp_path / f"astronaut_{name}.png")), before), name
    # Without the skip (StarGAN's generator) intensity 0 is the input too: x + 0 * (G(x, c) - x).
    torch.manual_seed(0)
    x = torch.rand(2, 3, SIZE, SIZE) * 2 - 1
    for G in (Generator(conv_dim=8), Generator(conv_dim=8, res_blocks=2, ultimate_skip=False)):
        assert torch.equal(edit(G, x, target("angry"), 0.0), x)
        assert not torch.equal(edit(G, x, target("angry"), 0.1), x)


def test_change_grows_monotonically_with_intensity(tiny_ckpt, astronaut, faces):
    G, _ = load_generator(tiny_ckpt)
    before = np.asarray(astronaut).astype(int)
    change = [np.abs(np.asarray(edit_picture(G, astronaut, faces, target("happy"), a)).astype(int) - before).mean()
              for a in (0.0, 0.25, 0.5, 0.75, 1.0, 1.25)]
    assert change[0] == 0
    assert all(lo < hi for lo, hi in zip(change, change[1:])), change
    # Full strength is the plain translation, bit for bit.
    x = crops_tensor([f.crop for f in faces])
    assert torch.equal(edit(G, x, target("happy"), 1.0), G.eval()(x, target("happy").expand(len(x), -1)))


def test_morph_ends_are_the_two_plain_translations(tiny_ckpt, tmp_path):
    assert main(list(map(str, ["--checkpoint", tiny_ckpt, "--input", ASTRONAUT, "--morph", "happy:surprised",
                               "--steps", "5", "--out", tmp_path]))) == 0
    grid = columns(Image.open(tmp_path / "astronaut_face0_grid.png"))           # input, afraid ... surprised
    morph = columns(Image.open(tmp_path / "astronaut_face0_happy-surprised_morph.png"))
    assert len(morph) == 1 + 5 and np.array_equal(morph[0], grid[0])
    assert np.array_equal(morph[1], grid[1 + 3]) and np.array_equal(morph[-1], grid[1 + 6])
    assert not np.array_equal(morph[3], morph[1]) and not np.array_equal(morph[3], morph[-1])
    gif = Image.open(tmp_path / "astronaut_face0_happy-surprised_morph.gif")
    assert gif.n_frames == 2 * 5 - 2 and gif.size == (SIZE, SIZE)
    # A morph alone writes no pasted photos.
    assert not list(tmp_path.glob("astronaut_happy.png"))


def test_intensity_strip_and_mp4_animation(tiny_ckpt, tmp_path):
    import av

    assert main(list(map(str, ["--checkpoint", tiny_ckpt, "--input", ASTRONAUT, "--expression", "happy",
                               "--intensity", "1.5", "--steps", "4", "--animation", "mp4", "--out", tmp_path]))) == 0
    strip = columns(Image.open(tmp_path / "astronaut_face0_happy_intensity.png"))
    assert len(strip) == 1 + 4 and np.array_equal(strip[1], strip[0])        # the ramp starts at the input
    steps = [np.abs(s - strip[0]).mean() for s in strip[1:]]
    assert all(lo < hi for lo, hi in zip(steps, steps[1:])), steps
    with av.open(str(tmp_path / "astronaut_face0_happy_intensity.mp4")) as f:
        assert sum(1 for _ in f.decode(video=0)) == 2 * 4 - 2


@pytest.mark.parametrize("args, fragment", [
    (["--morph", "happy"], "write it as FROM:TO"),
    (["--morph", "happy:smug"], "unknown expression 'smug'"),
    (["--intensity", "5"], "--intensity 5 is outside"),
    (["--morph", "happy:sad", "--steps", "1"], "--steps 1 must be"),
])
def test_bad_intensity_and_morph_flags(tiny_ckpt, tmp_path, capsys, args, fragment):
    assert_main_error(run_main(main, capsys, "--checkpoint", tiny_ckpt, "--input", ASTRONAUT, *args,
                               "--out", tmp_path), fragment)
