"""The paper's proposed extensions (attention mask, intermediate skips): off in every preset, trainable, loadable."""
import math

import pytest
import torch
import torch.nn as nn

from usgan.checkpoints import CheckpointError, load_generator, save_checkpoint
from usgan.config import PRESETS, ConfigError, preset, validate
from usgan.models import Generator, count_parameters
from usgan.run_outputs import save_sample_grid
from usgan.step import Engine, build_networks
from usgan.translate import translate

# Measured on the code before the extensions existed: G and D parameters, G's state-dict entries, a weighted sum
# of G's initial state after torch.manual_seed(0), and the next random draw (the stream G's init left behind).
BEFORE = {
    "paper": (2533440, 44778432, 43, 49924.62294642306, 0.6120542287826538),
    # the demo's D init draws since d_init_scale 0.7, its up-sampling weights since resize_conv
    "demo": (580512, 2806752, 50, 28599.66252447085, 0.17763358354568481),
    "demo-paper": (644128, 2806752, 43, 25138.339714883303, 0.6864996552467346),
    "stargan": (8436800, 44778432, 103, 382514.0345623583, 0.9472331404685974),
    "tiny": (44296, 179448, 43, 6371.483470624465, 0.37879419326782227),
}
VARIANTS = {"attention": {"model.attention": True},
            "skips": {"model.intermediate_skips": True, "model.g_res_blocks": 0},
            "both": {"model.attention": True, "model.intermediate_skips": True, "model.g_res_blocks": 0}}


def _fingerprint(module):
    return sum(float(t.double().sum()) * (i + 1) for i, t in enumerate(module.state_dict().values()))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_keeps_its_networks_keys_and_random_draws(name):
    cfg = preset(name)
    assert not cfg.model.attention and not cfg.model.intermediate_skips
    torch.manual_seed(0)
    G, D = build_networks(cfg)
    got = (count_parameters(G), count_parameters(D), len(G.state_dict()), _fingerprint(G), float(torch.rand(1)))
    want = BEFORE[name]
    assert got[:3] == want[:3] and got[3] == pytest.approx(want[3], rel=1e-12) and got[4] == want[4]
    assert G.attention is None and not any(k.startswith("attention") for k in G.state_dict())


def _zero_mask(module, inputs, output):
    return torch.zeros_like(output)


@pytest.mark.parametrize("skips", [False, True])
def test_attention_gates_the_change_and_a_zero_mask_returns_the_input_exactly(skips):
    torch.manual_seed(0)
    G = Generator(conv_dim=8, res_blocks=0 if skips else 1, intermediate_skips=skips, attention=True,
                  residual_blur=True, residual_scale=2.0)
    x, c = torch.rand(3, 3, 64, 64) * 2 - 1, torch.eye(7)[[0, 3, 6]]
    y, m = G(x, c, return_mask=True)
    assert y.shape == x.shape and m.shape == (3, 1, 64, 64)
    assert m.min() >= 0 and m.max() <= 1 and m.std() > 0
    assert ((y - x).abs() <= 2 * m + 1e-6).all()      # |m * scale * tanh| <= scale * m
    assert torch.equal(G(x, c), y)                     # the plain call is the same image, without the mask
    G.attention[-1].register_forward_hook(_zero_mask)
    assert torch.equal(G(x, c), x)
    assert not torch.equal(y, x)


def test_a_mask_of_a_quarter_makes_a_quarter_of_the_full_change():
    torch.manual_seed(0)
    G = Generator(conv_dim=8, attention=True)
    x, c = torch.rand(2, 3, 64, 64) * 2 - 1, torch.eye(7)[[1, 5]]
    hook = G.attention[-1].register_forward_hook(lambda mod, i, out: torch.ones_like(out))
    full = G(x, c)
    hook.remove()
    G.attention[-1].register_forward_hook(lambda mod, i, out: torch.full_like(out, 0.25))
    assert torch.allclose(G(x, c) - x, 0.25 * (full - x), atol=1e-6)


@pytest.mark.parametrize("skips", [False, True])
def test_the_fused_heads_are_the_colour_and_mask_convolutions_written_out(skips):
    torch.manual_seed(0)
    G = Generator(conv_dim=8, res_blocks=0 if skips else 1, intermediate_skips=skips, attention=True)
    x, c = torch.rand(2, 3, 64, 64) * 2 - 1, torch.eye(7)[[1, 4]]
    h = G._features(torch.cat([x, c[:, :, None, None].expand(-1, -1, 64, 64)], 1))
    mask = torch.sigmoid(G.attention[0](h))
    got, got_mask = G(x, c, return_mask=True)
    assert torch.allclose(got_mask, mask, atol=1e-6)
    assert torch.allclose(got, x + mask * torch.tanh(G.main[-2](h)), atol=1e-6)


@pytest.mark.parametrize("d", [8, 64])
def test_intermediate_skips_parameter_count_from_the_layer_table(d):
    c = 7
    conv = lambda cin, cout, k: cin * cout * k * k  # noqa: E731  (bias-free)
    norm = lambda ch: 2 * ch                         # noqa: E731  (affine InstanceNorm)
    want = (conv(3 + c, d, 7) + norm(d) + conv(d, 2 * d, 4) + norm(2 * d) + conv(2 * d, 4 * d, 4) + norm(4 * d)
            + conv(4 * d, 2 * d, 4) + norm(2 * d)            # up-sampling to S/2 reads the bottleneck alone
            + conv(2 * d + 2 * d, d, 4) + norm(d)            # ... to S reads it and the encoder's S/2 map
            + conv(d + d, 3, 7))                             # the colour head reads the decoder's and encoder's S maps
    G = Generator(c_dim=c, conv_dim=d, res_blocks=0, intermediate_skips=True)
    assert count_parameters(G) == want
    assert count_parameters(Generator(c_dim=c, conv_dim=d, res_blocks=0, intermediate_skips=True, attention=True)) \
        == want + conv(2 * d, 1, 7)


def test_intermediate_skips_are_the_u_net_written_out():
    torch.manual_seed(0)
    G = Generator(conv_dim=8, res_blocks=0, intermediate_skips=True)
    x, c = torch.rand(2, 3, 64, 64) * 2 - 1, torch.eye(7)[[2, 4]]
    L = G.main
    block = lambda i, h: L[i + 2](L[i + 1](L[i](h)))  # noqa: E731  conv, norm, ReLU
    e128 = block(0, torch.cat([x, c[:, :, None, None].expand(-1, -1, 64, 64)], 1))
    e64 = block(3, e128)
    d64 = block(9, block(6, e64))
    d128 = block(12, torch.cat([d64, e64], 1))
    want = torch.tanh(L[15](torch.cat([d128, e128], 1))) + x
    assert len(L) == 17 and torch.allclose(G(x, c), want, atol=1e-6)


def test_intermediate_skips_carry_the_encoder_around_a_dead_bottleneck():
    torch.manual_seed(0)
    x1, x2, c = torch.rand(1, 3, 64, 64) * 2 - 1, torch.rand(1, 3, 64, 64) * 2 - 1, torch.eye(7)[[2]]
    outs = {}
    for skips in (False, True):
        G = Generator(conv_dim=8, res_blocks=0, ultimate_skip=False, intermediate_skips=skips)
        nn.init.zeros_(G.main[9].weight)          # the first up-sampling conv: the bottleneck reaches nothing
        outs[skips] = G(x1, c), G(x2, c)
    assert torch.equal(*outs[False])              # without skips the output no longer depends on the face
    assert (outs[True][0] - outs[True][1]).abs().mean() > 1e-3


def test_config_refuses_extensions_that_cannot_work_in_one_line():
    with pytest.raises(ConfigError, match="model.attention .* set model.ultimate_skip=true"):
        validate(preset("stargan", **{"model.attention": True}))
    with pytest.raises(ConfigError, match="replaces the residual blocks; also set model.g_res_blocks=0"):
        validate(preset("tiny", **{"model.intermediate_skips": True}))
    for settings in VARIANTS.values():
        validate(preset("tiny", **settings))


def _batch(cfg, n=4):
    g = torch.Generator().manual_seed(0)
    s = cfg.model.image_size
    return torch.rand(n, 3, s, s, generator=g) * 2 - 1, torch.tensor([0, 3, 5, 6][:n])


def _trained(variant, steps=2, **more):
    cfg = preset("tiny", **VARIANTS[variant], **more)
    cfg.optim.n_critic = 1
    torch.manual_seed(0)
    engine = Engine.build(validate(cfg))
    before = {k: v.clone() for k, v in engine.G.state_dict().items()}
    for _ in range(steps):
        terms = engine.train_step(*_batch(cfg))
    return cfg, engine, before, terms


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_a_short_training_run_moves_every_part_of_each_variant(variant):
    cfg, engine, before, terms = _trained(variant)
    assert {"G/loss_fake", "G/loss_rec", "G/loss_cls", "D/loss_gp"} <= set(terms)
    assert all(math.isfinite(v) for v in terms.values())
    after = engine.G.state_dict()
    heads = [k for k in after if k.startswith("attention.")] + ["main.0.weight"]
    assert bool(heads[:-1]) == cfg.model.attention and bool(engine.G.skip_from) == cfg.model.intermediate_skips
    assert all(not torch.equal(before[k], after[k]) for k in heads)


def test_identity_init_with_attention_starts_from_the_input():
    cfg = preset("tiny", **VARIANTS["both"], **{"model.identity_init": True})
    torch.manual_seed(0)
    G = Engine.build(cfg).G
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    assert torch.equal(translate(G, x, torch.tensor([1, 4])), x)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_each_variant_round_trips_through_a_checkpoint(variant, tmp_path):
    cfg, engine, _, _ = _trained(variant, steps=1)
    save_checkpoint(tmp_path / "ck", engine, cfg)
    x, labels = _batch(cfg)
    want, want_mask = translate(engine.G_eval, x, labels, return_mask=True)
    plain = tmp_path / "plain-G.ckpt"      # no config beside it: the architecture comes from the keys alone
    plain.write_bytes((tmp_path / "ck" / "1-G.ckpt").read_bytes())
    for path in (tmp_path / "ck", tmp_path / "ck" / "1-G.ckpt", plain):
        G, loaded = load_generator(path)
        assert (loaded.model.attention, loaded.model.intermediate_skips) == (cfg.model.attention,
                                                                             cfg.model.intermediate_skips), path
        got, mask = translate(G, x, labels, return_mask=True)
        # The engine's G is channels-last, the loaded one is not: the same sums, rounded in another order.
        assert torch.allclose(got, want, atol=1e-5), path
        assert (mask is None) == (want_mask is None) and (mask is None or torch.allclose(mask, want_mask, atol=1e-5))


def test_a_config_that_disagrees_with_the_weights_is_refused_in_one_line(tmp_path):
    torch.save(Generator(conv_dim=8, attention=True).state_dict(), tmp_path / "att-G.ckpt")
    preset("tiny").save(tmp_path / "att-G.yaml")
    with pytest.raises(CheckpointError, match="says model.attention=False but the weights were trained with "
                                              "attention on") as e:
        load_generator(tmp_path / "att-G.ckpt")
    assert "\n" not in str(e.value)
    torch.save(Generator(conv_dim=8).state_dict(), tmp_path / "plain-G.ckpt")
    preset("tiny", **VARIANTS["skips"]).save(tmp_path / "plain-G.yaml")
    with pytest.raises(CheckpointError, match="model.intermediate_skips=True but .* intermediate_skips off"):
        load_generator(tmp_path / "plain-G.ckpt")


def test_sample_grids_save_the_mask_beside_them_when_g_has_one(tmp_path):
    torch.manual_seed(0)
    faces = torch.rand(2, 3, 64, 64) * 2 - 1
    save_sample_grid(Generator(conv_dim=8), faces, tmp_path / "plain" / "000003.png")
    assert [p.name for p in (tmp_path / "plain").iterdir()] == ["000003.png"]
    G = Generator(conv_dim=8, attention=True)
    save_sample_grid(G, faces, tmp_path / "att" / "000003.png")
    from PIL import Image
    import numpy as np
    grid, masks = (np.asarray(Image.open(tmp_path / "att" / n)) for n in ("000003.png", "000003_mask.png"))
    assert grid.shape == masks.shape == (2 * 64, 8 * 64, 3)
    assert np.array_equal(grid[:, :64], masks[:, :64])                 # both start with the input faces
    _, m = translate(G, faces[:1], torch.tensor([0]), return_mask=True)
    assert np.abs(masks[:64, 64:128, 0] / 255.0 - m[0, 0].numpy()).max() <= 1 / 255 + 1e-6
    G.attention[-1].register_forward_hook(_zero_mask)
    save_sample_grid(G, faces, tmp_path / "zero" / "g.png")
    assert np.asarray(Image.open(tmp_path / "zero" / "g_mask.png"))[:, 64:].max() == 0


def test_photo_synthesis_runs_with_an_attention_and_skips_checkpoint(tmp_path):
    from usgan.data.synthetic import render_face
    from usgan.synthesize import main as synthesize_main
    cfg, engine, _, _ = _trained("both", steps=1)
    save_checkpoint(tmp_path / "ck", engine, cfg)
    render_face(5, "neutral", size=128).save(tmp_path / "face.png")
    assert synthesize_main(["--input", str(tmp_path / "face.png"), "--crop", "center", "--expression", "happy",
                            "--intensity", "0.5", "--checkpoint", str(tmp_path / "ck"),
                            "--out", str(tmp_path / "syn")]) == 0
    assert any(p.suffix == ".png" for p in (tmp_path / "syn").rglob("*"))


@pytest.mark.parametrize("only", ["7", "1,-1", "0"])
def test_ablation_names_its_variant_numbers(only):
    from usgan.ablation import main
    from usgan.errors import UsageError
    with pytest.raises(UsageError, match=r"use numbers 1-6, e.g. --only 1,5"):
        main(["--only", only])


def test_the_mask_terms_are_its_mean_and_total_variation_with_their_weights():
    cfg = preset("tiny", **VARIANTS["attention"], **{"loss.lambda_mask": 0.7, "loss.lambda_mask_tv": 0.3})
    torch.manual_seed(0)
    engine = Engine.build(validate(cfg))
    x, label = _batch(cfg)
    label_trg = (label + 1) % 7
    c_org, c_trg = (nn.functional.one_hot(v, 7).float() for v in (label, label_trg))
    x_fake, mask = engine.loss.fake(x, c_trg)
    torch.manual_seed(1)
    total, terms = engine.loss.generator_phase(x, c_org, c_trg, label_trg, x_fake, mask)
    tv = mask.diff(dim=-1).abs().mean() + mask.diff(dim=-2).abs().mean()
    assert torch.allclose(terms["G/loss_mask"], mask.mean()) and torch.allclose(terms["G/loss_mask_tv"], tv)
    engine.loss.cfg.lambda_mask = engine.loss.cfg.lambda_mask_tv = 0.0
    torch.manual_seed(1)    # the same D augmentation draws
    plain, plain_terms = engine.loss.generator_phase(x, c_org, c_trg, label_trg, x_fake, mask)
    assert "G/loss_mask" not in plain_terms
    assert torch.allclose(total - plain, 0.7 * mask.mean() + 0.3 * tv, atol=1e-6)


def test_the_mask_weight_closes_the_mask_in_training():
    means = {}
    for weight in (0.0, 5.0):
        cfg, engine, _, _ = _trained("attention", steps=15, **{"loss.lambda_mask": weight, "optim.g_lr": 5e-3})
        x, label = _batch(cfg)
        with torch.no_grad():
            means[weight] = float(translate(engine.G, x, (label + 1) % 7, return_mask=True)[1].mean())
    assert means[5.0] < means[0.0] - 0.05, means
