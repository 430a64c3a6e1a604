"""Our training step against the authors' (arbishakram/US-GAN solver.py, StarGAN's), written out here line by line.

From the same weights and the same random draws (the batch, the target permutation, the GP's alpha), the loss
terms, G's and D's weights after one D step, and after a second D step with a G step, must agree to 1e-5, with
every fp32 speed switch off and on. The reference is spelled out in this file and shares no code with
usgan.losses, usgan.step or usgan.models, so a change of the loss math there cannot move it too.
"""
import dataclasses
import functools

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from usgan.authors_reference import AuthorsGenerator, AuthorsLoop
from usgan.config import SpeedConfig, preset
from usgan.step import Engine
from usgan.translate import unwrap

TOL = 1e-5
ADAM_EPS = 1e-8     # torch.optim.Adam's default, which both use
LR = 1e-4           # the paper's, for G and D


class TheirDiscriminator(nn.Module):
    """discriminator.py of the authors' repository."""

    def __init__(self, image_size=128, conv_dim=64, c_dim=5, repeat_num=6):
        super().__init__()
        layers = [nn.Conv2d(3, conv_dim, kernel_size=4, stride=2, padding=1), nn.LeakyReLU(0.01)]
        curr_dim = conv_dim
        for _ in range(1, repeat_num):
            layers.append(nn.Conv2d(curr_dim, curr_dim * 2, kernel_size=4, stride=2, padding=1))
            layers.append(nn.LeakyReLU(0.01))
            curr_dim = curr_dim * 2
        kernel_size = int(image_size / np.power(2, repeat_num))
        self.main = nn.Sequential(*layers)
        self.conv1 = nn.Conv2d(curr_dim, 1, kernel_size=3, stride=1, padding=1, bias=False)
        self.conv2 = nn.Conv2d(curr_dim, c_dim, kernel_size=kernel_size, bias=False)

    def forward(self, x):
        h = self.main(x)
        out_src = self.conv1(h)
        out_cls = self.conv2(h)
        return out_src, out_cls.view(out_cls.size(0), out_cls.size(1))


class TheirSolver:
    """Solver.train of the authors' solver.py, one iteration per call, in their order (CPU, fp32)."""

    def __init__(self, G, D, cfg):
        self.G, self.D = G, D
        o, l = cfg.optim, cfg.loss
        self.c_dim, self.n_critic = cfg.model.c_dim, o.n_critic
        self.lambda_cls, self.lambda_rec, self.lambda_gp = l.lambda_cls, l.lambda_rec, l.lambda_gp
        self.g_optimizer = torch.optim.Adam(self.G.parameters(), o.g_lr, [o.beta1, o.beta2])
        self.d_optimizer = torch.optim.Adam(self.D.parameters(), o.d_lr, [o.beta1, o.beta2])

    def reset_grad(self):
        self.g_optimizer.zero_grad()
        self.d_optimizer.zero_grad()

    def gradient_penalty(self, y, x):
        weight = torch.ones(y.size())
        dydx = torch.autograd.grad(outputs=y, inputs=x, grad_outputs=weight, retain_graph=True, create_graph=True,
                                   only_inputs=True)[0]
        dydx = dydx.view(dydx.size(0), -1)
        dydx_l2norm = torch.sqrt(torch.sum(dydx ** 2, dim=1))
        return torch.mean((dydx_l2norm - 1) ** 2)

    def label2onehot(self, labels, dim):
        batch_size = labels.size(0)
        out = torch.zeros(batch_size, dim)
        out[np.arange(batch_size), labels.long()] = 1
        return out

    def classification_loss(self, logit, target):
        return F.cross_entropy(logit, target)

    def iteration(self, i, x_real, label_org):
        rand_idx = torch.randperm(label_org.size(0))
        label_trg = label_org[rand_idx]
        c_org = self.label2onehot(label_org, self.c_dim)
        c_trg = self.label2onehot(label_trg, self.c_dim)

        out_src, out_cls = self.D(x_real)
        d_loss_real = - torch.mean(out_src)
        d_loss_cls = self.classification_loss(out_cls, label_org)
        x_fake = self.G(x_real, c_trg)
        out_src, out_cls = self.D(x_fake.detach())
        d_loss_fake = torch.mean(out_src)
        alpha = torch.rand(x_real.size(0), 1, 1, 1)
        x_hat = (alpha * x_real.data + (1 - alpha) * x_fake.data).requires_grad_(True)
        out_src, _ = self.D(x_hat)
        d_loss_gp = self.gradient_penalty(out_src, x_hat)
        d_loss = d_loss_real + d_loss_fake + self.lambda_cls * d_loss_cls + self.lambda_gp * d_loss_gp
        self.reset_grad()
        d_loss.backward()
        self.d_optimizer.step()
        loss = {"D/loss_real": d_loss_real.item(), "D/loss_fake": d_loss_fake.item(),
                "D/loss_cls": d_loss_cls.item(), "D/loss_gp": d_loss_gp.item()}

        if (i + 1) % self.n_critic == 0:
            x_fake = self.G(x_real, c_trg)
            out_src, out_cls = self.D(x_fake)
            g_loss_fake = - torch.mean(out_src)
            g_loss_cls = self.classification_loss(out_cls, label_trg)
            x_reconst = self.G(x_fake, c_org)
            g_loss_rec = torch.mean(torch.abs(x_real - x_reconst))
            g_loss = g_loss_fake + self.lambda_rec * g_loss_rec + self.lambda_cls * g_loss_cls
            self.reset_grad()
            g_loss.backward()
            self.g_optimizer.step()
            loss.update({"G/loss_fake": g_loss_fake.item(), "G/loss_rec": g_loss_rec.item(),
                         "G/loss_cls": g_loss_cls.item()})
        return loss


PLAIN = SpeedConfig(channels_last=False, bf16=False, bf16_d=False, compile=False, batch_d=False, share_fake=False,
                    freeze_d_in_g=False, d_matmul=False, fused_adam=False)
SWITCHES = ("batch_d", "share_fake", "freeze_d_in_g", "d_matmul", "channels_last", "fused_adam")
SPEEDS = {"all_off": PLAIN, **{s: dataclasses.replace(PLAIN, **{s: True}) for s in SWITCHES},
          "all_on": dataclasses.replace(PLAIN, **{s: True for s in SWITCHES})}
ARCHS = ("usgan", "stargan")
ITERATIONS = 2      # n_critic 2: the first iteration steps D alone, the second D and then G


def _config(arch):
    """The paper's losses and optimizer at a test's size: 64 px, D's 2x2 patch map, narrow layers."""
    cfg = preset("stargan" if arch == "stargan" else "paper")
    cfg.model.image_size, cfg.model.d_repeat_num, cfg.model.g_conv_dim, cfg.model.d_conv_dim = 64, 5, 8, 8
    if arch == "stargan":
        cfg.model.g_res_blocks = 2       # StarGAN repeats the block (six); two keep the test quick
    cfg.optim.n_critic = 2
    assert cfg.optim.g_lr == cfg.optim.d_lr == LR
    return cfg


def _batches():
    g = torch.Generator().manual_seed(11)
    labels = [torch.tensor([0, 3, 5, 6]), torch.tensor([1, 2, 4, 4])]
    return [(torch.rand(4, 3, 64, 64, generator=g) * 2 - 1, y) for y in labels]


def _draw_seed(i):
    return 100 + i      # both loops draw the permutation and alpha from the global stream, seeded alike


def _their_networks(cfg):
    torch.manual_seed(0)
    m = cfg.model
    G = AuthorsGenerator(conv_dim=m.g_conv_dim, c_dim=m.c_dim, repeat_num=m.g_res_blocks, skip=m.ultimate_skip)
    D = TheirDiscriminator(m.image_size, m.d_conv_dim, m.c_dim, m.d_repeat_num)
    for norm in (n for n in G.modules() if isinstance(n, nn.InstanceNorm2d)):
        # Affine weights away from 1 and 0, so a network that dropped or swapped them would show.
        norm.weight.data.uniform_(0.5, 1.5), norm.bias.data.uniform_(-0.2, 0.2)
    return G, D


def _record_gradients(named_params, optimizer, log):
    """Append {name: gradient} to log each time optimizer steps: what the step moved the weights with."""
    names, step = [n for n, _ in named_params], optimizer.step

    def recorded(*args, **kwargs):
        params = [p for group in optimizer.param_groups for p in group["params"]]
        log.append({n: p.grad.detach().clone() for n, p in zip(names, params)})
        return step(*args, **kwargs)
    optimizer.step = recorded


def _snapshot(G, D, terms, grads):
    """(loss terms, G's state, D's state, the gradients of the steps so far) after an iteration."""
    return ({k: v for k, v in terms.items() if k != "lr"},
            {k: v.detach().clone() for k, v in unwrap(G).state_dict().items()},
            {k: v.detach().clone() for k, v in unwrap(D).state_dict().items()},
            {net: list(steps) for net, steps in grads.items()})


def _run(G, D, g_opt, d_opt, iterate):
    grads = {"G": [], "D": []}
    _record_gradients(unwrap(G).named_parameters(), g_opt, grads["G"])
    _record_gradients(unwrap(D).named_parameters(), d_opt, grads["D"])
    after = []
    for i, (x, y) in enumerate(_batches()):
        torch.manual_seed(_draw_seed(i))
        after.append(_snapshot(G, D, iterate(i, x, y), grads))
    return after


@functools.lru_cache(maxsize=None)
def _theirs(arch):
    cfg = _config(arch)
    G, D = _their_networks(cfg)
    start = _snapshot(G, D, {}, {})
    solver = TheirSolver(G, D, cfg)
    return start, _run(G, D, solver.g_optimizer, solver.d_optimizer, solver.iteration)


def _ours(arch, speed):
    cfg = dataclasses.replace(_config(arch), speed=speed)
    e = Engine.build(cfg)
    (_, G0, D0, _), _ = _theirs(arch)
    unwrap(e.G).load_state_dict(G0)
    unwrap(e.D).load_state_dict(D0)
    return _run(e.G, e.D, e.g_opt, e.d_opt, lambda i, x, y: e.train_step(x, y))


def _adam_direction(g):
    return g / (g.abs() + ADAM_EPS)


def _assert_same(ours, theirs, what, params_only=False):
    """Loss terms, each step's gradients and the weights after the steps agree to TOL.

    Adam's first step moves a weight by about lr times the sign of its gradient, however small: where float
    rounding alone decides that sign (G's first-layer weights on the constant label maps, whose interior
    gradient InstanceNorm cancels to ~1e-8, a millionth of the largest), two exact implementations step up to
    2 lr apart. So after the gradients are checked, a weight is compared wherever the gradients that moved it
    would make the same step; those left out must stay a sliver (at most 1 in 1,000; 24 of G's 44,296 at most
    here, and none of D's).
    """
    (t_ours, g_ours, d_ours, gr_ours), (t_theirs, g_theirs, d_theirs, gr_theirs) = ours, theirs
    assert t_ours.keys() == t_theirs.keys(), what
    for k in t_theirs:
        assert t_ours[k] == pytest.approx(t_theirs[k], abs=TOL, rel=TOL), f"{what}: {k}"
    for name, a, b in (("G", g_ours, g_theirs), ("D", d_ours, d_theirs)):
        assert len(gr_ours[name]) == len(gr_theirs[name]), f"{what}: {name} stepped a different number of times"
        decided, left_out, total = {}, 0, 0
        for step, (mine, ref) in enumerate(zip(gr_ours[name], gr_theirs[name])):
            assert mine.keys() == ref.keys(), f"{what}: {name} steps other parameters"
            for k, g in ref.items():
                gap = (mine[k] - g).abs().max().item()
                assert gap <= TOL * g.abs().max().item(), f"{what}: {name}'s gradient of {k} at step {step}: {gap:.2e}"
                # Adam's first step, lr * g / (|g| + eps), turns a rounding-sized gradient difference near |g| ~ eps
                # into up to 2 lr: a weight is decided where the two gradients would move it alike.
                step_gap = LR * (_adam_direction(mine[k]) - _adam_direction(g)).abs()
                decided[k] = decided.get(k, True) & (step_gap <= TOL / 2)
        for k in b:
            if params_only and ("running_" in k or "num_batches" in k):
                continue
            diff = (a[k].float() - b[k].float()).abs()
            if k in decided:
                left_out, total = left_out + int((~decided[k]).sum()), total + decided[k].numel()
                diff = diff[decided[k]]
            assert diff.numel() == 0 or diff.max() < TOL, f"{what}: {name}'s {k} differs by {diff.max():.2e}"
        assert left_out <= 1e-3 * max(total, 1), f"{what}: {left_out} of {name}'s weights had undecided gradients"


def test_the_draws_can_tell_a_target_from_the_source():
    # The permutation each iteration draws moves some labels: a term using the wrong one of the two would show.
    for i, (_, y) in enumerate(_batches()):
        torch.manual_seed(_draw_seed(i))
        assert (y[torch.randperm(4)] != y).any()


@pytest.mark.parametrize("speed", list(SPEEDS))
@pytest.mark.parametrize("arch", ARCHS)
def test_one_d_step_then_a_d_and_g_step_match_the_authors(arch, speed):
    start, theirs = _theirs(arch)
    ours = _ours(arch, SPEEDS[speed])
    for i, (o, t) in enumerate(zip(ours, theirs)):
        # share_fake makes one G(x, c') where theirs makes two: the InstanceNorm running averages (tracked,
        # never used by either) then see one update fewer. Every parameter must still agree.
        _assert_same(o, t, f"{arch}/{speed}, after iteration {i}", params_only=SPEEDS[speed].share_fake and i > 0)
    assert [len(theirs[1][3][n]) for n in ("D", "G")] == [2, 1]  # two D steps and one G step were compared
    params = [k for k in start[1] if "running_" not in k and "num_batches" not in k]
    g_moved = max((theirs[1][1][k] - start[1][k]).abs().max().item() for k in params)
    d_moved = max((theirs[0][2][k] - start[2][k]).abs().max().item() for k in start[2])
    assert g_moved > 5 * TOL and d_moved > 5 * TOL              # both networks really stepped (by about lr)
    assert all(torch.equal(theirs[0][1][k], start[1][k]) for k in params)   # and G not in a D-only iteration


@pytest.mark.parametrize("size, repeat", [(128, 6), (64, 5)])
def test_discriminator_forward_matches_the_authors(size, repeat):
    torch.manual_seed(1)
    conv_dim = 64 if size == 128 else 16
    theirs = TheirDiscriminator(size, conv_dim, 7, repeat)
    x = torch.rand(2, 3, size, size) * 2 - 1
    with torch.no_grad():
        want_src, want_cls = theirs(x)
        for speed in (PLAIN, SPEEDS["all_on"]):
            cfg = preset("paper", model__image_size=size, model__d_repeat_num=repeat, model__d_conv_dim=conv_dim)
            cfg.speed = speed
            D = Engine.build(cfg).D
            D.load_state_dict(theirs.state_dict(), strict=True)
            src, cls = D(x.contiguous(memory_format=torch.channels_last) if speed.channels_last else x)
            scale = max(want_src.abs().max().item(), want_cls.abs().max().item())
            assert src.shape == want_src.shape and cls.shape == want_cls.shape == (2, 7)
            assert (src - want_src).abs().max() <= TOL * scale and (cls - want_cls).abs().max() <= TOL * scale


def test_the_speed_benchmarks_authors_loop_is_this_one():
    """benchmarks/train_speed.py and gpu_check.py time usgan.authors_reference.AuthorsLoop: it must be theirs."""
    (_, G0, D0, _), theirs = _theirs("usgan")
    loop = AuthorsLoop(_config("usgan"))
    loop.G.load_state_dict(G0)
    loop.D.load_state_dict(D0)
    ours = _run(loop.G, loop.D, loop.g_optimizer, loop.d_optimizer, lambda i, x, y: loop.step(x, y, i))
    for i, (o, t) in enumerate(zip(ours, theirs)):
        _assert_same(o, t, f"AuthorsLoop, iteration {i}")
