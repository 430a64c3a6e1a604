"""The pure-PyTorch training iteration, its losses and its learning-rate schedule."""
import math
import subprocess
import sys

import pytest
import torch

from usgan.config import preset, validate
from usgan.errors import ConfigError
from usgan.losses import USGANLoss, gradient_penalty
from usgan.step import Engine, authors_lr, linear_decay_lr


def _batch(cfg, n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    s = cfg.model.image_size
    return torch.rand(n, 3, s, s, generator=g) * 2 - 1, torch.tensor([0, 3, 5, 6][:n])


@pytest.mark.parametrize("name", ["usgan", "stargan"])
def test_one_step_returns_every_loss_term(name):
    cfg = preset("tiny")
    if name == "stargan":
        cfg.model.g_res_blocks, cfg.model.ultimate_skip, cfg.loss.lambda_rec = 6, False, 10.0
    cfg.optim.n_critic = 1  # G step on the first iteration too
    torch.manual_seed(0)
    e = Engine.build(cfg)
    g_before = [p.clone() for p in e.G.parameters()]
    d_before = [p.clone() for p in e.D.parameters()]
    terms = e.train_step(*_batch(cfg))
    assert set(terms) == {"D/loss_real", "D/loss_fake", "D/loss_cls", "D/loss_gp",
                          "G/loss_fake", "G/loss_rec", "G/loss_cls", "lr"}
    assert all(math.isfinite(v) for v in terms.values())
    assert any(not torch.equal(a, b) for a, b in zip(g_before, e.G.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d_before, e.D.parameters()))
    assert e.iteration == 1


def test_generator_steps_every_n_critic():
    cfg = preset("tiny")
    cfg.optim.n_critic = 3
    e = Engine.build(cfg)
    x, y = _batch(cfg)
    seen = ["G/loss_rec" in e.train_step(x, y) for _ in range(6)]
    assert seen == [False, False, True, False, False, True]


def test_gradient_penalty_matches_hand_computation():
    # critic(x) = sum(w * x) has gradient w everywhere: GP = (||w|| - 1)^2 for every sample.
    w = torch.tensor([[3.0, 4.0]])                  # norm 5 -> (5 - 1)^2 = 16
    x = torch.randn(5, 2, requires_grad=True)
    assert gradient_penalty((x * w).sum(1), x).item() == pytest.approx(16.0)
    # critic(x) = ||x||^2 / 2 has gradient x: GP = mean((||x_i|| - 1)^2)
    x = torch.tensor([[0.6, 0.8], [3.0, 4.0]], requires_grad=True)   # norms 1 and 5 -> (0 + 16) / 2
    assert gradient_penalty((x ** 2).sum(1) / 2, x).item() == pytest.approx(8.0)


def test_linear_decay_reaches_zero():
    lrs = [linear_decay_lr(1e-4, i, 200_000, 100_000) for i in (0, 99_999, 100_000, 150_000, 199_999, 200_000)]
    assert lrs[:3] == [1e-4, 1e-4, 1e-4]
    assert lrs[3] == pytest.approx(5e-5) and lrs[4] == pytest.approx(1e-9) and lrs[5] == 0.0


def _authors_rates(base, num_iters, num_iters_decay, lr_update_step):
    """The rate each iteration of the authors' solver trains with, their update written out (and the final one)."""
    lr, rates = base, []
    for i in range(num_iters):
        rates.append(lr)
        if (i + 1) % lr_update_step == 0 and (i + 1) > (num_iters - num_iters_decay):
            lr -= (base / float(num_iters_decay))
    return rates + [lr]


def test_authors_schedule_is_their_arithmetic():
    at = lambda i: authors_lr(1e-4, i, 200_000, 100_000, 5_000)  # noqa: E731
    # Nothing is subtracted until after iteration 105,000 of their 1-based count; twenty times 1e-9 by the end.
    assert at(100_000) == 1e-4 and at(104_999) == 1e-4
    assert at(105_000) == 1e-4 - 1e-9
    assert at(199_999) == pytest.approx(1e-4 - 19e-9, rel=1e-12) and at(200_000) == pytest.approx(0.9998e-4, rel=1e-12)
    assert at(200_000) == _authors_rates(1e-4, 200_000, 100_000, 5_000)[-1]     # the same float subtractions
    for args in ((10, 10, 2), (10, 3, 2), (11, 5, 3), (7, 7, 1), (100, 37, 5), (20, 0, 5)):
        assert [authors_lr(2e-4, i, *args) for i in range(args[0] + 1)] == _authors_rates(2e-4, *args), args


def test_the_schedule_setting_reaches_the_optimizers():
    for name, schedule in (("paper", "authors"), ("stargan", "authors"), ("demo", "linear"), ("tiny", "linear")):
        assert preset(name).optim.lr_schedule == schedule, name
    cfg = preset("tiny", optim__num_iters=8, optim__num_iters_decay=6, optim__lr_update_step=2,
                 optim__n_critic=1, model__image_size=32, model__d_repeat_num=5)
    x, y = _batch(cfg)
    for schedule, expected in (("authors", _authors_rates(cfg.optim.g_lr, 8, 6, 2)[:8]),
                               ("linear", [linear_decay_lr(cfg.optim.g_lr, i, 8, 6) for i in range(8)])):
        cfg.optim.lr_schedule = schedule
        e = Engine.build(cfg)
        seen = [e.train_step(x, y)["lr"] for _ in range(8)]
        assert seen == expected and e.d_opt.param_groups[0]["lr"] == expected[-1], schedule
    assert expected[-1] > 0 and linear_decay_lr(cfg.optim.g_lr, 8, 8, 6) == 0.0    # linear ends at 0
    with pytest.raises(ConfigError, match="optim.lr_schedule must be one of authors, linear, not 'cosine'"):
        validate(preset("paper", optim__lr_schedule="cosine"))


def test_state_dict_round_trip_continues_identically():
    cfg = preset("tiny")
    torch.manual_seed(0)
    a = Engine.build(cfg)
    x, y = _batch(cfg)
    for _ in range(3):
        a.train_step(x, y)
    b = Engine.build(cfg)
    b.load_state_dict(a.state_dict())
    assert b.iteration == 3
    torch.manual_seed(5)
    ta = a.train_step(x, y)
    torch.manual_seed(5)
    tb = b.train_step(x, y)
    assert ta == tb


def test_target_labels_are_a_permutation_of_the_batch():
    cfg = preset("tiny")
    e = Engine.build(cfg)
    seen = []
    orig = e.loss.__class__.discriminator_phase

    def spy(self, x_real, c_trg, label_org, **kw):
        seen.append((c_trg.argmax(1).sort().values, label_org.sort().values))
        return orig(self, x_real, c_trg, label_org, **kw)

    e.loss.__class__.discriminator_phase = spy
    try:
        e.train_step(*_batch(cfg))
    finally:
        e.loss.__class__.discriminator_phase = orig
    assert torch.equal(*seen[0])


def test_targets_differ_never_asks_for_the_source_expression(monkeypatch):
    from usgan.losses import USGANLoss
    cfg = preset("tiny")
    cfg.optim.targets_differ = True
    e = Engine.build(cfg)
    seen = []
    orig = USGANLoss.discriminator_phase

    def spy(self, x_real, c_trg, label_org, **kw):
        seen.append((c_trg.argmax(1), label_org))
        return orig(self, x_real, c_trg, label_org, **kw)

    monkeypatch.setattr(USGANLoss, "discriminator_phase", spy)
    x, _ = _batch(cfg)
    for step in range(10):
        e.train_step(x, torch.tensor([0, 3, 3, 6]))
    targets = torch.stack([t for t, _ in seen])
    assert all(bool((t != o).all()) for t, o in seen)
    assert len(set(targets[:, 1].tolist())) > 2          # drawn, not a fixed shift: several others appear


def test_d_warmup_trains_d_alone_first():
    cfg = preset("tiny")
    cfg.optim.n_critic, cfg.optim.d_warmup = 1, 3
    e = Engine.build(cfg)
    x, y = _batch(cfg)
    g_before = [p.clone() for p in e.G.parameters()]
    seen = ["G/loss_rec" in e.train_step(x, y) for _ in range(3)]
    assert seen == [False, False, False]
    assert all(torch.equal(a, b) for a, b in zip(g_before, e.G.parameters()))
    assert "G/loss_rec" in e.train_step(x, y)


def test_bf16_falls_back_to_fp32_where_the_hardware_has_no_bf16(monkeypatch):
    import usgan.step
    cfg = preset("tiny")
    cfg.speed.bf16 = True
    monkeypatch.setattr(usgan.step, "bf16_supported", lambda device: False)   # a CPU without AVX512-BF16/AMX
    with pytest.warns(UserWarning, match="no native bf16"):
        e = Engine.build(cfg)
    assert e.cfg.speed.bf16 is False and cfg.speed.bf16 is True     # the caller's config is left as it was
    assert not e.loss.bf16_g


def test_compile_falls_back_to_eager_where_no_cpp_compiler_works():
    # A real broken toolchain, in a fresh process: inductor told to build with a compiler that does not exist.
    code = ("import warnings, torch._inductor.config as c; c.cpp.cxx = ('/nonexistent/g++',)\n"
            "from usgan.config import preset; from usgan.step import Engine\n"
            "cfg = preset('tiny'); cfg.speed.compile = True\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    warnings.simplefilter('always'); e = Engine.build(cfg)\n"
            "print([str(x.message) for x in w if 'speed.compile' in str(x.message)])\n"
            "print(e.cfg.speed.compile, e._g_runner() is e.G)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    warned, state = out.stdout.strip().splitlines()[-2:]
    assert "No working C++ compiler" in warned and "apt-get install -y g++ python3-dev" in warned
    assert state == "False True"


def test_a_warm_up_that_ends_at_chance_is_named_with_its_fix():
    from usgan.step import warmup_at_chance
    # the demo's seed 4 (D/loss_cls at every hundred of its 600 warm-up iterations: 1.95) against seed 0's last 1.14
    warning = warmup_at_chance([1.95, 1.94, 1.96] * 33, 7)
    assert "D's classifier is still at chance" in warning and "ln 7 = 1.95" in warning
    assert "--set model.d_init_scale=0.7" in warning and "\n" not in warning
    assert warmup_at_chance([1.14] * 100, 7) is None and warmup_at_chance([], 7) is None
    assert "--set model.d_init_scale=1.0 " in warmup_at_chance([1.95] * 100, 7, d_init_scale=0.7)   # the demo's own


def test_cls_warmup_trains_only_d_classifier_on_real_faces_first():
    cfg = preset("tiny")
    cfg.optim.n_critic, cfg.optim.cls_warmup, cfg.optim.d_warmup = 1, 2, 3
    e = Engine.build(cfg)
    x, y = _batch(cfg)
    g_before = [p.clone() for p in e.G.parameters()]
    critic_before = e.D.conv1.weight.clone()
    first = [e.train_step(x, y) for _ in range(2)]
    assert all(set(t) == {"D/loss_cls", "lr"} for t in first)
    assert first[1]["D/loss_cls"] < first[0]["D/loss_cls"]              # the same batch: it learns
    assert torch.equal(critic_before, e.D.conv1.weight)                 # the critic's head waits for the GAN
    assert all(torch.equal(a, b) for a, b in zip(g_before, e.G.parameters()))
    assert "D/loss_gp" in e.train_step(x, y) and e.iteration == 3      # then D alone, the whole of it
    assert "G/loss_rec" in e.train_step(x, y)


def test_g_ema_averages_g_and_is_what_a_checkpoint_shows(tmp_path):
    from usgan.checkpoints import load_generator, save_checkpoint
    cfg = preset("tiny")
    cfg.optim.n_critic, cfg.optim.g_ema = 1, 0.5
    e = Engine.build(cfg)
    assert e.G_eval is e.G_ema and e.G_ema is not e.G
    x, y = _batch(cfg)
    e.train_step(x, y)
    before = [p.clone() for p in e.G_ema.parameters()]
    e.train_step(x, y)
    for avg, old, p in zip(e.G_ema.parameters(), before, e.G.parameters()):
        assert torch.allclose(avg, 0.5 * old + 0.5 * p.detach(), atol=1e-6)   # lerp toward G by 1 - decay
    assert any(not torch.equal(a, p) for a, p in zip(e.G_ema.parameters(), e.G.parameters()))
    # the authors'-layout G file and load_generator carry the average; a resume restores both
    d = save_checkpoint(tmp_path / "ck", e, cfg)
    ema = e.G_ema.state_dict()
    assert all(torch.equal(v, torch.load(d / "2-G.ckpt")[k]) for k, v in ema.items())
    G, _ = load_generator(d)
    assert all(torch.equal(v, G.state_dict()[k]) for k, v in ema.items())
    resumed = Engine.build(cfg)
    resumed.load_state_dict(torch.load(d / "engine.pt", weights_only=False))
    assert all(torch.equal(v, resumed.G_ema.state_dict()[k]) for k, v in ema.items())
    assert all(torch.equal(v, resumed.G.state_dict()[k]) for k, v in e.G.state_dict().items())
    plain = preset("tiny")
    assert Engine.build(plain).G_ema is None and "G_ema" not in Engine.build(plain).state_dict()


def test_colour_jitter_keeps_shapes_and_lets_gradients_through():
    from usgan.losses import colour_jitter
    torch.manual_seed(0)
    x = (torch.rand(8, 3, 16, 16) * 2 - 1).requires_grad_(True)
    y = colour_jitter(x)
    assert not torch.allclose(y, x)
    # an affine change of each pixel's colour: pixels that were equal stay equal, so shapes survive
    x2 = x.detach().clone()
    x2[:, :, 4:8, 4:8] = x2[:, :, 4:5, 4:5]
    torch.manual_seed(1)
    y2 = colour_jitter(x2)
    assert torch.allclose(y2[:, :, 4:8, 4:8], y2[:, :, 4:5, 4:5].expand(-1, -1, 4, 4), atol=1e-6)
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_random_shift_moves_each_image_whole_and_lets_gradients_through():
    from usgan.losses import random_shift
    torch.manual_seed(0)
    x = (torch.rand(16, 3, 12, 12) * 2 - 1).requires_grad_(True)
    y = random_shift(x, 2)
    assert y.shape == x.shape
    moved = 0
    for xi, yi in zip(x.detach(), y.detach()):
        # each output is its own image moved by one (dy, dx) in [-2, 2]^2, zeros where nothing was shifted in
        found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if torch.equal(yi, torch.roll(xi, (dy, dx), (1, 2)) * _inside(12, dy, dx))]
        assert len(found) == 1
        moved += found[0] != (0, 0)
    assert moved > 8
    y.sum().backward()
    assert x.grad.sum() > 0 and set(x.grad.unique().tolist()) <= {0.0, 1.0}


def test_random_cutout_blanks_one_square_per_image_and_lets_gradients_through():
    from usgan.losses import random_cutout
    torch.manual_seed(0)
    x = (torch.rand(32, 3, 12, 12) + 0.5).requires_grad_(True)    # no pixel is 0 before the cutout
    y = random_cutout(x, 4)
    blank = (y.detach() == 0).all(1)                                 # (n, h, w): the hole, same in every channel
    assert torch.equal(y.detach()[~blank.unsqueeze(1).expand_as(y)], x.detach()[~blank.unsqueeze(1).expand_as(x)])
    clipped = 0
    for hole in blank:
        rows, cols = hole.any(1).nonzero().flatten(), hole.any(0).nonzero().flatten()
        # one axis-aligned rectangle, 4 x 4 unless the border clips it
        assert hole.sum() == len(rows) * len(cols) and 1 <= len(rows) <= 4 and 1 <= len(cols) <= 4
        assert rows.max() - rows.min() + 1 == len(rows) and cols.max() - cols.min() + 1 == len(cols)
        clipped += hole.sum() < 16
    assert 0 < clipped < 32                                           # some holes at the border, most inside
    assert len({tuple(h.nonzero()[0].tolist()) for h in blank}) > 8   # at different places
    y.sum().backward()
    assert torch.equal(x.grad, (~blank).unsqueeze(1).expand_as(x).float())
    # a share of the side, refused in one line where it would blank (or shift out) the whole image
    validate(preset("demo", loss__d_cutout=0.25))
    for bad in ({"loss__d_cutout": 1.0}, {"loss__d_shift": 0.5}, {"loss__d_cutout": -0.1}):
        with pytest.raises(ConfigError, match="loss.d_shift must be in \\[0, 0.5\\) and loss.d_cutout in \\[0, 1\\)"):
            validate(preset("demo", **bad))


def test_d_blur_hides_checkerboards_from_d_and_so_from_gs_gradient():
    from usgan.models import binomial_blur
    cfg = preset("tiny")
    loss = USGANLoss(None, None, cfg.loss)
    checker = (torch.arange(12).view(12, 1) + torch.arange(12).view(1, 12)) % 2 * 2.0 - 1   # period 2 both ways
    x = torch.rand(4, 3, 12, 12) * 2 - 1
    cb = checker.expand(4, 3, 12, 12)
    assert torch.equal(loss._as_d_sees(x), x)                             # every augmentation off in tiny
    cfg.loss.d_blur = True
    seen = loss._as_d_sees(x)
    assert torch.allclose(seen, binomial_blur(x)) and not torch.allclose(seen, x, atol=0.05)
    # D sees an image and the same image plus a checkerboard alike away from the border ...
    assert torch.allclose(loss._as_d_sees(x + 0.5 * cb)[..., 1:-1, 1:-1], seen[..., 1:-1, 1:-1], atol=1e-6)
    # ... so G's gradient through what D sees has no period-2 part, where without the blur it has one
    # (a D reading the interior; at the border the replicate padding lets a little through)
    weights = torch.zeros(1, 3, 12, 12)
    weights[..., 1:-1, 1:-1] = torch.randn(1, 3, 10, 10)

    def checker_part(blur):
        cfg.loss.d_blur = blur
        fake = x.clone().requires_grad_(True)
        (loss._as_d_sees(fake) * weights).sum().backward()
        return float((fake.grad * cb).sum().abs())
    assert checker_part(True) < 1e-4 < checker_part(False)


def _inside(size, dy, dx):
    """1 where a pixel moved by (dy, dx) came from inside the image, 0 where zeros were shifted in."""
    m = torch.zeros(1, size, size)
    m[:, max(dy, 0):size + min(dy, 0), max(dx, 0):size + min(dx, 0)] = 1
    return m


def test_instance_noise_colour_and_shift_change_what_d_sees_not_the_loss_terms():
    cfg = preset("tiny")
    cfg.optim.n_critic = 1
    cfg.loss.d_noise, cfg.loss.d_augment, cfg.loss.d_shift, cfg.loss.d_cutout = 0.1, True, 0.125, 0.5
    torch.manual_seed(0)
    e = Engine.build(cfg)
    terms = e.train_step(*_batch(cfg))
    assert set(terms) >= {"D/loss_gp", "G/loss_cls"} and all(math.isfinite(v) for v in terms.values())


@pytest.mark.parametrize("batch_d", [True, False])
def test_classifier_reading_fakes_as_their_source_adds_its_term_to_d_only(batch_d):
    cfg = preset("tiny")
    cfg.speed.batch_d = batch_d
    torch.manual_seed(0)
    e = Engine.build(cfg)
    x, label = _batch(cfg)
    c_trg = torch.nn.functional.one_hot(label.flip(0), 7).float()
    cfg.loss.cls_fake_source = 0.5
    torch.manual_seed(1)
    with_term, terms = USGANLoss(e.G, e.D, cfg.loss, cfg.speed).discriminator_phase(x, c_trg, label)
    cfg.loss.cls_fake_source = 0.0
    torch.manual_seed(1)
    without, plain = USGANLoss(e.G, e.D, cfg.loss, cfg.speed).discriminator_phase(x, c_trg, label)
    # D's classifier on G(x, c') against the SOURCE label, weighted; the paper's terms are untouched
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(e.D(e.G(x, c_trg))[1], label)
    assert terms["D/loss_cls_fake"].item() == pytest.approx(float(expected), rel=1e-4)
    assert (with_term - without).item() == pytest.approx(0.5 * float(expected), rel=1e-3, abs=1e-5)
    assert "D/loss_cls_fake" not in plain


def test_lazy_gradient_penalty_runs_every_kth_d_step_at_k_times_its_weight():
    cfg = preset("tiny")
    cfg.optim.n_critic, cfg.loss.gp_every = 1, 3
    torch.manual_seed(0)
    e = Engine.build(cfg)
    x, y = _batch(cfg)
    assert ["D/loss_gp" in e.train_step(x, y) for _ in range(6)] == [True, False, False, True, False, False]
    c_trg = torch.nn.functional.one_hot(y.flip(0), 7).float()
    totals = {}
    for gp in (True, False):
        torch.manual_seed(1)   # the same fake and augmentation draws; the penalty's mixing comes last
        totals[gp] = USGANLoss(e.G, e.D, cfg.loss, cfg.speed).discriminator_phase(x, c_trg, y, gp=gp)
    (with_gp, terms), (without, plain) = totals[True], totals[False]
    assert "D/loss_gp" not in plain and {k: v.item() for k, v in plain.items()} == pytest.approx(
        {k: v.item() for k, v in terms.items() if k != "D/loss_gp"})
    assert (with_gp - without).item() == pytest.approx(3 * cfg.loss.lambda_gp * terms["D/loss_gp"].item(), rel=1e-4)


def test_g_cls_scale_weighs_gs_classification_term_only():
    cfg = preset("tiny")
    torch.manual_seed(0)
    e = Engine.build(cfg)
    x, y = _batch(cfg)
    c_org = torch.nn.functional.one_hot(y, 7).float()
    c_trg, y_trg = torch.nn.functional.one_hot(y.flip(0), 7).float(), y.flip(0)
    out = {}
    for scale in (1.0, 2.5):
        cfg.loss.g_cls_scale = scale
        loss = USGANLoss(e.G, e.D, cfg.loss, cfg.speed)
        torch.manual_seed(1)
        g_total, g_terms = loss.generator_phase(x, c_org, c_trg, y_trg)
        torch.manual_seed(1)
        d_total, _ = loss.discriminator_phase(x, c_trg, y)
        out[scale] = g_total.item(), g_terms["G/loss_cls"].item(), d_total.item()
    (g1, cls, d1), (g2, _, d2) = out[1.0], out[2.5]
    assert g2 - g1 == pytest.approx(1.5 * cfg.loss.lambda_cls * cls, rel=1e-4) and d2 == pytest.approx(d1)


def test_a_lazy_penalty_of_zero_steps_is_refused():
    cfg = preset("tiny")
    cfg.loss.gp_every = 0
    with pytest.raises(ConfigError, match="gp_every"):
        validate(cfg)
