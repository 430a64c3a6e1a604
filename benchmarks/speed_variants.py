"""The training-step variants benchmarks/train_speed.py times: the authors' loop, and ours under each set of
SpeedConfig switches (PATHS), with the FLOPs one iteration of each costs.
"""
from __future__ import annotations

import dataclasses

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from usgan.authors_reference import AuthorsLoop
from usgan.config import SpeedConfig, preset
from usgan.step import Engine


class OursLoop:
    def __init__(self, cfg):
        self.engine = Engine.build(cfg)

    def step(self, x_real, label_org, i):
        self.engine.iteration = i
        return self.engine.train_step(x_real, label_org)


def arch_config(arch: str, size: int, batch: int):
    cfg = preset("stargan" if arch == "stargan" else "paper")
    cfg.model.image_size, cfg.optim.batch_size = size, batch
    return cfg


FAST = dict(channels_last=True, batch_d=True, share_fake=True, freeze_d_in_g=True, d_matmul=True, fused_adam=True)
PLAIN = dict(channels_last=False, bf16=False, bf16_d=False, compile=False, batch_d=False, share_fake=False,
             freeze_d_in_g=False, d_matmul=False, fused_adam=False)
PATHS = {  # name -> SpeedConfig switches (None: the authors' loop)
    "authors": None,
    "ours_fp32": {**PLAIN, **FAST},
    "ours_bf16": {**PLAIN, **FAST, "bf16": True, "bf16_d": True},
    # --ablation: each switch on its own or taken away
    "plain_fp32": PLAIN,
    "ours_fp32_nchw": {**PLAIN, **FAST, "channels_last": False},
    "ours_fp32_no_fusion": {**PLAIN, "channels_last": True, "d_matmul": True},
    "ours_fp32_no_matmul": {**PLAIN, **FAST, "d_matmul": False},
    "ours_bf16_nchw": {**PLAIN, **FAST, "bf16": True, "bf16_d": True, "channels_last": False},
    "ours_bf16_g_only": {**PLAIN, **FAST, "bf16": True},
    "ours_bf16_no_matmul": {**PLAIN, **FAST, "bf16": True, "bf16_d": True, "d_matmul": False},
    "ours_bf16_foreach_adam": {**PLAIN, **FAST, "bf16": True, "bf16_d": True, "fused_adam": False},
    # only when named in --paths: compiling takes minutes on a small CPU
    "ours_bf16_compile": {**PLAIN, **FAST, "bf16": True, "bf16_d": True, "compile": True},
    "ours_fp32_compile": {**PLAIN, **FAST, "compile": True},
}
DEFAULT_PATHS = ["authors", "ours_fp32", "ours_bf16"]
ABLATION_PATHS = ["plain_fp32", "ours_fp32_nchw", "ours_fp32_no_fusion", "ours_fp32_no_matmul", "ours_bf16_nchw",
                  "ours_bf16_g_only", "ours_bf16_no_matmul", "ours_bf16_foreach_adam"]


def make_loop(name: str, cfg):
    if PATHS[name] is None:
        return AuthorsLoop(cfg)
    cfg = dataclasses.replace(cfg, speed=SpeedConfig(**PATHS[name]))
    return OursLoop(cfg)


def precision(name: str) -> str:
    sw = PATHS[name]
    if sw is None or not sw.get("bf16"):
        return "fp32"
    return "bf16 autocast (G and D)" if sw.get("bf16_d") else "bf16 autocast (G), fp32 (D)"


class OpFlops(TorchDispatchMode):
    """FlopCounterMode's per-op formulas without its module tracker, whose hooks reject autograd.grad
    (the gradient penalty) in torch 2.x: every aten op FlopCounterMode knows is counted the same way."""

    def __init__(self):
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        packet = func._overloadpacket
        if packet in flop_registry:
            self.total += flop_registry[packet](*args, **kwargs, out_val=out)
        return out


def flops_per_iteration(name: str, cfg, n_critic: int, count_batch=2) -> float:
    """FLOPs of one iteration of the n_critic schedule, counted at count_batch and scaled to the real batch."""
    torch.manual_seed(0)
    small = dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, batch_size=count_batch))
    sw = PATHS[name]
    if sw is not None:   # FLOPs do not depend on precision or layout; count eager fp32
        sw = {**sw, "compile": False}
    loop = AuthorsLoop(small) if sw is None else OursLoop(dataclasses.replace(small, speed=SpeedConfig(**sw)))
    x, y = batch_of(cfg.model.image_size, count_batch, seed=0)
    counts = []
    for i in (0, n_critic - 1):
        with OpFlops() as fc:
            loop.step(x, y, i)
        counts.append(fc.total)
    f_d, f_g = counts
    return ((n_critic - 1) * f_d + f_g) / n_critic * cfg.optim.batch_size / count_batch


def batch_of(size: int, batch: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, size, size, generator=g) * 2 - 1, torch.randint(0, 7, (batch,), generator=g)
