"""The networks match the paper's layer table, parameter counts and the authors' checkpoint layout."""
import torch
import torch.nn as nn
import pytest

from usgan.models import Discriminator, Generator, ResizeConv, count_parameters


def test_parameter_counts_are_exact():
    assert count_parameters(Generator()) == 2_533_440
    assert count_parameters(Generator(res_blocks=6, ultimate_skip=False)) == 8_436_800
    assert count_parameters(Discriminator()) == 44_778_432


def test_shapes_and_ranges():
    G, D = Generator(), Discriminator()
    x = torch.rand(2, 3, 128, 128) * 2 - 1
    c = torch.eye(7)[[3, 5]]
    y = G(x, c)
    assert y.shape == x.shape
    assert y.min() >= -2 and y.max() <= 2          # tanh + input: unclamped range [-2, 2]
    src, cls = D(x)
    assert src.shape == (2, 1, 2, 2) and cls.shape == (2, 7)


def test_zeroed_last_conv_returns_input_exactly():
    G = Generator()
    nn.init.zeros_(G.main[-2].weight)             # the last 7x7 conv before tanh
    x = torch.rand(3, 3, 128, 128) * 2 - 1
    assert torch.equal(G(x, torch.eye(7)[:3]), x)
    G.ultimate_skip = False
    assert torch.equal(G(x, torch.eye(7)[:3]), torch.zeros_like(x))


# The authors' released generator, pre-trained_model/usgan_87_G.ckpt in github.com/arbishakram/US-GAN: a plain
# state dict; a sample of its conv weights and InstanceNorm parameters.
AUTHORS_G_KEYS = [
    ("main.0.weight", (64, 10, 7, 7)), ("main.1.weight", (64,)), ("main.3.weight", (128, 64, 4, 4)),
    ("main.6.weight", (256, 128, 4, 4)), ("main.9.main.0.weight", (256, 256, 3, 3)),
    ("main.9.main.3.weight", (256, 256, 3, 3)), ("main.9.main.4.running_var", (256,)),
    ("main.10.weight", (256, 128, 4, 4)), ("main.13.weight", (128, 64, 4, 4)), ("main.14.bias", (64,)),
    ("main.16.weight", (3, 64, 7, 7)),
]


def test_state_dict_keys_are_the_authors():
    sd = Generator().state_dict()
    for key, shape in AUTHORS_G_KEYS:
        assert tuple(sd[key].shape) == shape, key
    assert len(sd) == 43  # 8 convs and 7 InstanceNorms of 5 entries each: usgan_87_G.ckpt's 43
    star = Generator(res_blocks=6, ultimate_skip=False).state_dict()
    assert "main.14.main.4.weight" in star and tuple(star["main.15.weight"].shape) == (256, 128, 4, 4)
    dsd = Discriminator().state_dict()
    assert tuple(dsd["conv1.weight"].shape) == (1, 2048, 3, 3)
    assert tuple(dsd["conv2.weight"].shape) == (7, 2048, 2, 2)
    assert {k.rsplit(".", 1)[0] for k in dsd if k.startswith("main.")} == {f"main.{i}" for i in range(0, 12, 2)}


class AuthorsGenerator(nn.Module):
    """The authors' generator (github.com/arbishakram/US-GAN) written out flat, independently of our class."""

    def __init__(self):
        super().__init__()
        IN = lambda c: nn.InstanceNorm2d(c, affine=True, track_running_stats=True)  # noqa: E731

        class Res(nn.Module):
            def __init__(self):
                super().__init__()
                self.main = nn.Sequential(nn.Conv2d(256, 256, 3, 1, 1, bias=False), IN(256), nn.ReLU(True),
                                          nn.Conv2d(256, 256, 3, 1, 1, bias=False), IN(256))

            def forward(self, x):
                return x + self.main(x)

        self.main = nn.Sequential(
            nn.Conv2d(10, 64, 7, 1, 3, bias=False), IN(64), nn.ReLU(True),
            nn.Conv2d(64, 128, 4, 2, 1, bias=False), IN(128), nn.ReLU(True),
            nn.Conv2d(128, 256, 4, 2, 1, bias=False), IN(256), nn.ReLU(True),
            Res(),
            nn.ConvTranspose2d(256, 128, 4, 2, 1, bias=False), IN(128), nn.ReLU(True),
            nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False), IN(64), nn.ReLU(True),
            nn.Conv2d(64, 3, 7, 1, 3, bias=False), nn.Tanh())

    def forward(self, x, c):
        c = c.view(c.size(0), c.size(1), 1, 1).repeat(1, 1, x.size(2), x.size(3))
        return self.main(torch.cat([x, c], 1)) + x


def test_authors_state_dict_loads_strictly_and_outputs_match():
    torch.manual_seed(1)
    ref = AuthorsGenerator()
    for m in ref.modules():  # non-trivial affine and running stats, so a mix-up would show
        if isinstance(m, nn.InstanceNorm2d):
            m.weight.data.uniform_(0.5, 1.5), m.bias.data.uniform_(-0.2, 0.2)
            m.running_mean.uniform_(-1, 1), m.running_var.uniform_(0.5, 2)
    G = Generator()
    G.load_state_dict(ref.state_dict(), strict=True)
    x, c = torch.rand(2, 3, 128, 128) * 2 - 1, torch.eye(7)[[0, 6]]
    # The authors never call eval(): their outputs use per-image statistics. Ours match in train and eval mode.
    with torch.no_grad():
        want = ref.train()(x, c)
        assert torch.allclose(G.train()(x, c), want, atol=1e-5)
        before = {k: v.clone() for k, v in G.state_dict().items()}
        assert torch.allclose(G.eval()(x, c), want, atol=1e-5)
        assert all(torch.equal(before[k], v) for k, v in G.state_dict().items())  # eval never touches buffers
        assert not torch.allclose(ref.eval()(x, c), want, atol=1e-3)  # what a naive .eval() would have given


@pytest.mark.parametrize("size", [64, 128])
def test_discriminator_other_sizes(size):
    D = Discriminator(image_size=size, c_dim=7, conv_dim=8, repeat_num=6)
    src, cls = D(torch.zeros(1, 3, size, size))
    assert cls.shape == (1, 7) and src.shape[-1] == size // 64


def test_label_norm_switch_adds_only_label_keys_and_starts_as_the_paper_network():
    torch.manual_seed(0)
    paper = Generator(conv_dim=8)
    torch.manual_seed(0)
    switched = Generator(conv_dim=8, label_norm=True)
    extra = set(switched.state_dict()) - set(paper.state_dict())
    assert extra and all(".label_affine." in k for k in extra)
    assert set(paper.state_dict()) <= set(switched.state_dict())
    x, c = torch.rand(2, 3, 64, 64) * 2 - 1, torch.eye(7)[[1, 4]]
    # zero at init: the switch changes nothing until it is trained
    assert torch.allclose(switched(x, c), paper(x, c), atol=1e-6)
    for norm in switched.label_norms:
        norm.label_affine.weight.data.normal_()
    a, b = switched(x, torch.eye(7)[[1, 1]]), switched(x, torch.eye(7)[[4, 4]])
    # the label now reaches the interior of the image, not only the border a constant input map survives in
    assert (a - b)[..., 16:48, 16:48].abs().mean() > 0.05


def test_residual_scale_multiplies_the_change_and_reaches_the_whole_range():
    torch.manual_seed(0)
    paper = Generator(conv_dim=8)
    scaled = Generator(conv_dim=8, residual_scale=2.0)
    assert list(scaled.state_dict()) == list(paper.state_dict())      # a fixed factor: nothing to save or load
    scaled.load_state_dict(paper.state_dict())
    x, c = torch.rand(2, 3, 64, 64) * 2 - 1, torch.eye(7)[[1, 4]]
    assert torch.allclose(scaled(x, c) - x, 2 * (paper(x, c) - x), atol=1e-5)
    # a white pixel can become black only when the change may exceed the tanh's 1
    with torch.no_grad():
        for G in (paper, scaled):
            G.main[-2].weight.zero_()
            G.main[-2].weight[:, 0, 3, 3] = -50.0    # saturate the tanh at -1 wherever channel 0 is active
    white = torch.ones(1, 3, 64, 64)
    assert paper(white, c[:1]).min() > -0.01 and scaled(white, c[:1]).min() < -0.99


def test_residual_blur_keeps_the_authors_keys_and_removes_period_two_patterns():
    torch.manual_seed(0)
    paper = Generator(conv_dim=8)
    blurred = Generator(conv_dim=8, residual_blur=True)
    assert list(blurred.state_dict()) == list(paper.state_dict())     # a fixed blur: nothing to save or load
    blurred.load_state_dict(paper.state_dict())
    x, c = torch.rand(2, 3, 64, 64) * 2 - 1, torch.eye(7)[[1, 4]]
    change, blurred_change = paper(x, c) - x, blurred(x, c) - x
    # the blur of the paper's change is exactly what is added; a constant change passes through unchanged
    kernel = torch.tensor([1.0, 2.0, 1.0])
    kernel = (kernel[:, None] * kernel[None, :] / 16).expand(3, 1, 3, 3)
    expected = nn.functional.conv2d(nn.functional.pad(change, (1, 1, 1, 1), mode="replicate"), kernel, groups=3)
    assert torch.allclose(blurred_change, expected, atol=1e-5)
    checker = (torch.arange(64)[:, None] + torch.arange(64)[None, :]) % 2 * 2.0 - 1   # +-1 period-2 pattern
    with torch.no_grad():
        out = nn.functional.conv2d(nn.functional.pad(checker.expand(1, 3, 64, 64), (1, 1, 1, 1), mode="replicate"),
                                   kernel, groups=3)
    assert out[..., 1:-1, 1:-1].abs().max() < 1e-6


def test_resize_conv_is_nearest_upsampling_then_its_3x3_conv():
    torch.manual_seed(0)
    up = ResizeConv(5, 4)
    x = torch.randn(2, 5, 6, 7)
    want = nn.functional.conv2d(nn.functional.interpolate(x, scale_factor=2, mode="nearest"), up.weight, padding=1)
    assert torch.allclose(up(x), want, atol=1e-5)
    assert [n for n, _ in up.named_parameters()] == ["weight"] and list(up.state_dict()) == ["weight"]


def test_resize_conv_draws_no_checkerboard_where_a_transposed_conv_does():
    torch.manual_seed(0)
    flat = torch.ones(1, 4, 8, 8)
    for layer in (nn.ConvTranspose2d(4, 3, 4, 2, 1, bias=False), ResizeConv(4, 3)):
        with torch.no_grad():
            inner = layer(flat)[..., 1:-1, 1:-1]      # away from the zero padding
        period_two = (inner[..., ::2, ::2] - inner[..., 1::2, ::2]).abs().max()
        assert (period_two < 1e-5) == isinstance(layer, ResizeConv)


def test_resize_conv_generator_keeps_the_paper_keys_and_loads_from_its_weights_alone(tmp_path):
    from usgan.checkpoints import CheckpointError, load_generator
    from usgan.config import preset
    torch.manual_seed(0)
    G = Generator(conv_dim=8, resize_conv=True)
    assert list(G.state_dict()) == list(Generator(conv_dim=8).state_dict())
    # the up-sampling kernels: 3x3 instead of 4x4, 7 fewer weights per pair of channels
    assert count_parameters(Generator(conv_dim=8)) - count_parameters(G) == (16 - 9) * (32 * 16 + 16 * 8)
    torch.save(G.state_dict(), tmp_path / "G.ckpt")
    loaded, cfg = load_generator(tmp_path / "G.ckpt")
    assert cfg.model.resize_conv and not preset("paper").model.resize_conv
    x, c = torch.rand(2, 3, 64, 64) * 2 - 1, torch.eye(7)[[2, 6]]
    assert torch.equal(loaded(x, c), G.eval()(x, c))
    preset("tiny").save(tmp_path / "G.yaml")
    with pytest.raises(CheckpointError, match="model.resize_conv=False but .* with resize_conv on"):
        load_generator(tmp_path / "G.ckpt")
