"""Every fast path of the training step computes what the plain path computes, on a fixed batch.

Each case builds two engines from the same seed, runs one iteration on the same batch with the same random
stream, and compares the loss terms and the gradients each optimizer steps with (snapshotted at .step()).
fp32 paths: the same numbers up to float reassociation (loss terms rel. 1e-4, gradients 1e-3 of their
largest element: channels_last convolutions sum in another order). bf16 autocast: loss terms within 5 %
relative (plus 0.02 absolute, for terms near zero) and every network's gradient pointing the same way
(cosine similarity >= 0.98): bf16 keeps 8 mantissa bits, so per-element agreement is not the claim; the
loss-curve comparison in benchmarks/train_speed.py --curves-only is the evidence that training follows the same path.
"""
import dataclasses
import functools

import pytest
import torch

from usgan.config import SpeedConfig, apply_overrides, load, preset
from usgan.step import Engine

PLAIN = SpeedConfig(channels_last=False, bf16=False, bf16_d=False, compile=False,
                    batch_d=False, share_fake=False, freeze_d_in_g=False, d_matmul=False, fused_adam=False)


@functools.lru_cache(maxsize=None)
def _plain(g_iteration: bool, arch="usgan"):
    return _run(PLAIN, g_iteration, arch)


def _run(speed: SpeedConfig, g_iteration: bool, arch="usgan"):
    cfg = preset("tiny")
    cfg.model.image_size, cfg.model.d_repeat_num = 32, 5      # seconds for the whole file
    if arch == "stargan":
        cfg.model.g_res_blocks, cfg.model.ultimate_skip, cfg.loss.lambda_rec = 2, False, 10.0
    cfg.optim.n_critic = 1 if g_iteration else 2      # first iteration: D and G, or D only
    cfg.speed = speed
    torch.manual_seed(0)
    e = Engine.build(cfg)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(4, 3, 32, 32, generator=g) * 2 - 1
    y = torch.tensor([0, 3, 5, 6])
    grads = {}

    def snapshot(name, opt):
        step = opt.step

        def wrapped(*a, **k):
            grads[name] = torch.cat([p.grad.detach().float().flatten() for grp in opt.param_groups
                                     for p in grp["params"]])
            return step(*a, **k)
        opt.step = wrapped
    snapshot("D", e.d_opt)
    snapshot("G", e.g_opt)
    torch.manual_seed(2)
    terms = e.train_step(x, y)
    return terms, grads


def _rel(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


FP32_PATHS = {
    "batch_d": dict(batch_d=True),
    "share_fake": dict(share_fake=True),
    "freeze_d_in_g": dict(freeze_d_in_g=True),
    "channels_last": dict(channels_last=True),
    "d_matmul": dict(d_matmul=True),
    "all_fp32": dict(batch_d=True, share_fake=True, freeze_d_in_g=True, channels_last=True, d_matmul=True),
}


@pytest.mark.parametrize("g_iteration", [True, False], ids=["D+G", "D-only"])
@pytest.mark.parametrize("path", list(FP32_PATHS))
def test_fp32_fast_path_matches_plain(path, g_iteration):
    ref_terms, ref_grads = _plain(g_iteration)
    terms, grads = _run(dataclasses.replace(PLAIN, **FP32_PATHS[path]), g_iteration)
    assert terms.keys() == ref_terms.keys()
    for k in ref_terms:
        assert terms[k] == pytest.approx(ref_terms[k], rel=1e-4, abs=1e-6), k
    assert grads.keys() == ref_grads.keys() == ({"D", "G"} if g_iteration else {"D"})
    for k in ref_grads:
        assert _rel(grads[k], ref_grads[k]) < 1e-3, (k, _rel(grads[k], ref_grads[k]))


def test_all_fp32_paths_match_plain_for_stargan():
    ref_terms, ref_grads = _plain(True, "stargan")
    terms, grads = _run(dataclasses.replace(PLAIN, **FP32_PATHS["all_fp32"]), True, "stargan")
    for k in ref_terms:
        assert terms[k] == pytest.approx(ref_terms[k], rel=1e-4, abs=1e-6), k
    for k in ref_grads:
        assert _rel(grads[k], ref_grads[k]) < 1e-3, k


@pytest.mark.parametrize("bf16_d", [False, True], ids=["bf16-G", "bf16-G+D"])
def test_bf16_paths_stay_within_tolerance(bf16_d):
    ref_terms, ref_grads = _plain(True)
    fast = dataclasses.replace(PLAIN, **FP32_PATHS["all_fp32"], bf16=True, bf16_d=bf16_d)
    terms, grads = _run(fast, True)
    for k in ref_terms:
        assert terms[k] == pytest.approx(ref_terms[k], rel=0.05, abs=0.02), k
    for k in ref_grads:
        cos = torch.nn.functional.cosine_similarity(grads[k], ref_grads[k], dim=0)
        assert cos >= 0.98, (k, float(cos))


def test_every_switch_set_on_the_command_line_comes_back_from_the_runs_config_yaml(tmp_path):
    cfg = preset("tiny")
    flipped = {f.name: not getattr(cfg.speed, f.name) for f in dataclasses.fields(SpeedConfig)}
    apply_overrides(cfg, [f"speed.{name}={str(value).lower()}" for name, value in flipped.items()])
    cfg.save(tmp_path / "config.yaml")                   # what every run writes beside its results
    assert dataclasses.asdict(load(tmp_path / "config.yaml").speed) == flipped


@pytest.mark.slow
def test_compiled_generator_matches_plain():
    ref_terms, ref_grads = _plain(True)
    terms, grads = _run(dataclasses.replace(PLAIN, compile=True), True)
    for k in ref_terms:
        assert terms[k] == pytest.approx(ref_terms[k], rel=1e-3, abs=1e-5), k
    for k in ref_grads:
        assert _rel(grads[k], ref_grads[k]) < 1e-3, k
