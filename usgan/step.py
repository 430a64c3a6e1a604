"""One US-GAN training iteration in plain PyTorch: no Ray, no files, no printing.

    engine = Engine.build(cfg, device)            # G, D, Adam for each, the loss
    terms = engine.train_step(x_real, label_org)  # one D step; a G step every n_critic-th call
    engine.state_dict() / engine.load_state_dict(sd)   # everything a resumed run needs
    for engine, terms in single_run(cfg, data): ...     # the whole of a fresh 1-worker usgan.train run

The Ray worker loop (training_loop.py) wraps G and D in DDP with `engine.wrap(fn)`; nothing here knows about it.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import logging
import math
import warnings
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .config import Config
from .losses import USGANLoss
from .matmul_conv import use_matmul_convs
from .models import Discriminator, Generator
from .translate import unwrap


def build_networks(cfg: Config):
    """G and D of the configured architecture, on the CPU."""
    m = cfg.model
    G = Generator(c_dim=m.c_dim, conv_dim=m.g_conv_dim, res_blocks=m.g_res_blocks, ultimate_skip=m.ultimate_skip,
                  label_norm=m.label_norm, residual_blur=m.residual_blur, residual_scale=m.residual_scale,
                  attention=m.attention, intermediate_skips=m.intermediate_skips, resize_conv=m.resize_conv)
    D = Discriminator(image_size=m.image_size, c_dim=m.c_dim, conv_dim=m.d_conv_dim, repeat_num=m.d_repeat_num)
    if m.identity_init:
        # With the skip, a zero last conv makes G(x, c) == x: training starts from "change nothing" and
        # only learns the edit an expression needs, instead of first unlearning random noise.
        torch.nn.init.zeros_(G.main[-2].weight)
    if m.d_kaiming_init or m.d_init_scale:
        # PyTorch's default init shrinks the signal at every layer of this norm-free critic until the biases
        # dominate: every face looks alike to D's classifier, which then sits at chance (CE = ln 7) for a few
        # hundred iterations, at some seeds for the whole warm-up (docs/learning.md). Full He init starts it
        # at every seed, but at d_conv_dim 64 its critic guides G less well than the default's where that one
        # starts; d_init_scale keeps the hidden layers just large enough to start (0.5 did not, 0.7 did).
        hidden = [layer for layer in D.main if isinstance(layer, torch.nn.Conv2d)]
        layers, scale = (hidden, m.d_init_scale) if m.d_init_scale else (hidden + [D.conv1, D.conv2], 1.0)
        for layer in layers:
            torch.nn.init.kaiming_normal_(layer.weight, a=0.01, nonlinearity="leaky_relu")
            layer.weight.data.mul_(scale)
            if layer.bias is not None:
                torch.nn.init.zeros_(layer.bias)
    return G, D


def linear_decay_lr(base_lr: float, iteration: int, num_iters: int, num_iters_decay: int) -> float:
    """Constant, then linear to 0 over the last num_iters_decay iterations (iteration counts from 0)."""
    start = num_iters - num_iters_decay
    if num_iters_decay <= 0 or iteration < start:
        return base_lr
    return base_lr * max(0.0, (num_iters - iteration) / num_iters_decay)


def authors_lr(base_lr: float, iteration: int, num_iters: int, num_iters_decay: int, update_step: int) -> float:
    """The rate the authors' solver (StarGAN's) trains iteration `iteration` (from 0) with.

    After their iteration i, when (i+1) % update_step == 0 and i+1 > num_iters - num_iters_decay, they subtract
    base_lr / num_iters_decay from the rate once; the same float subtractions are repeated here.
    """
    if num_iters_decay <= 0:
        return base_lr
    start = num_iters - num_iters_decay
    first = (start // update_step + 1) * update_step       # the first multiple of update_step above start
    return _subtracted(base_lr, num_iters_decay, max(0, (iteration - first) // update_step + 1))


@functools.lru_cache(maxsize=256)
def _subtracted(base_lr: float, num_iters_decay: int, times: int) -> float:
    lr = base_lr
    for _ in range(times):
        lr -= base_lr / float(num_iters_decay)
    return lr


def scheduled_lr(optim, base_lr: float, iteration: int) -> float:
    """The configured schedule (optim.lr_schedule) at `iteration`."""
    if optim.lr_schedule == "authors":
        return authors_lr(base_lr, iteration, optim.num_iters, optim.num_iters_decay, optim.lr_update_step)
    return linear_decay_lr(base_lr, iteration, optim.num_iters, optim.num_iters_decay)


def bf16_supported(device: torch.device) -> bool:
    """bf16 autocast pays on CUDA with bf16 and on CPUs with native bf16 matrix units."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    except (AttributeError, RuntimeError):
        return False


@functools.cache
def compile_problem(device_type: str) -> str | None:
    """Why torch.compile cannot build kernels on this device (None where it can): on a CPU it needs a C++
    compiler and Python's headers, which a minimal Debian or Ubuntu image lacks."""
    # On a CPU the C++ toolchain logs that no CUDA was found: true, expected, and not the user's concern.
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    try:
        torch.compile(lambda t: t * 2 + 1, dynamic=False)(torch.ones(4, device=device_type))
    except Exception as e:   # noqa: BLE001 - any failure to build means: run eager
        return str(e).strip().splitlines()[0]
    return None


def _speed_off(cfg: Config, switch: str, why: str) -> Config:
    """A copy of cfg with speed.<switch> off, after a warning saying why (the caller's cfg is left as it was)."""
    warnings.warn(f"speed.{switch}: {why}", stacklevel=3)
    return dataclasses.replace(cfg, speed=dataclasses.replace(cfg.speed, **{switch: False}))


@dataclass
class Engine:
    G: torch.nn.Module
    D: torch.nn.Module
    g_opt: torch.optim.Optimizer
    d_opt: torch.optim.Optimizer
    cfg: Config
    device: torch.device
    iteration: int = 0
    G_ema: torch.nn.Module | None = None    # the running average of G's weights, where optim.g_ema > 0
    shard: tuple[int, int] = (0, 1)         # (rank, world size) under DDP: targets come from the global batch
    seed: int = 0
    _compiled: tuple | None = field(default=None, repr=False)   # (the G it was made from, torch.compile(G))

    @classmethod
    def build(cls, cfg: Config, device="cpu") -> "Engine":
        device = torch.device(device)
        if cfg.speed.bf16 and not bf16_supported(device):
            # Emulated bf16 is slower than fp32: a preset that asks for it still runs, at fp32, on such machines.
            cfg = _speed_off(cfg, "bf16", f"this {device.type} has no native bf16 units; training in fp32")
        if cfg.speed.compile and (problem := compile_problem(device.type)):
            fix = "apt-get install -y g++ python3-dev" if device.type == "cpu" else "see PyTorch's torch.compile notes"
            cfg = _speed_off(cfg, "compile", f"torch.compile cannot build kernels here ({problem}); training without "
                                             f"it (to get it: {fix})")
        G, D = build_networks(cfg)
        fmt = torch.channels_last if cfg.speed.channels_last else torch.contiguous_format
        G, D = G.to(device, memory_format=fmt), D.to(device, memory_format=fmt)
        if cfg.speed.d_matmul:
            use_matmul_convs(D, cfg.model.image_size)
        o = cfg.optim
        # The default (foreach) update launches a dozen ops per tensor group: 13 ms a step for the demo's D on one
        # core, 2 ms fused (docs/learning.md, "Longer runs").
        fused = cfg.speed.fused_adam or None
        g_opt = torch.optim.Adam(G.parameters(), o.g_lr, (o.beta1, o.beta2), fused=fused)
        d_opt = torch.optim.Adam(D.parameters(), o.d_lr, (o.beta1, o.beta2), fused=fused)
        G_ema = copy.deepcopy(G).eval().requires_grad_(False) if o.g_ema else None
        return cls(G, D, g_opt, d_opt, cfg, device, G_ema=G_ema)

    def seed_stream(self, seed: int, rank: int = 0) -> None:
        """Seed what the steps draw (targets, augmentation, GP mixing): per rank, and by iteration, so a resumed
        run does not replay the same targets. Every loop that trains (usgan.train, the benchmarks) calls this."""
        self.seed = seed
        torch.manual_seed(seed * 100_003 + rank * 7919 + self.iteration)

    def wrap(self, fn) -> None:
        """Replace G and D by fn(G) and fn(D), e.g. DistributedDataParallel, keeping the optimizers."""
        self.G, self.D = fn(self.G), fn(self.D)

    @property
    def G_eval(self) -> torch.nn.Module:
        """The generator whose outputs are shown, scored and exported: the weight average where kept, else G."""
        return self.G_ema if self.G_ema is not None else unwrap(self.G)

    @property
    def loss(self) -> USGANLoss:
        return USGANLoss(self._g_runner(), self.D, self.cfg.loss, self.cfg.speed, self.device.type)

    def _g_runner(self):
        """G as the loss calls it: torch.compile(G) when speed.compile (D stays eager: its GP needs double backward)."""
        if not self.cfg.speed.compile:
            return self.G
        if self._compiled is None or self._compiled[0] is not self.G:
            self._compiled = (self.G, torch.compile(self.G, dynamic=False))
        return self._compiled[1]

    def _set_lr(self) -> None:
        o = self.cfg.optim
        for opt, base in ((self.g_opt, o.g_lr), (self.d_opt, o.d_lr)):
            for group in opt.param_groups:
                group["lr"] = scheduled_lr(o, base, self.iteration)

    def train_step(self, x_real: torch.Tensor, label_org: torch.Tensor) -> dict[str, float]:
        """One iteration on a batch of images in [-1, 1] and their expression labels."""
        c_dim, o = self.cfg.model.c_dim, self.cfg.optim
        x_real = x_real.to(self.device, non_blocking=True)
        if self.cfg.speed.channels_last:
            x_real = x_real.contiguous(memory_format=torch.channels_last)
        label_org = label_org.to(self.device, non_blocking=True)
        label_trg = self._targets(label_org)
        c_org = F.one_hot(label_org, c_dim).float()
        c_trg = F.one_hot(label_trg, c_dim).float()
        self._set_lr()

        loss = self.loss
        # ==================== Warm up D's classifier (optim.cls_warmup) ==================== #
        if self.iteration < o.cls_warmup:
            terms = self._step(self.d_opt, *loss.classifier_phase(x_real, label_org))
            return self._finish(terms)

        g_iteration = self.iteration >= o.d_warmup and (self.iteration + 1) % o.n_critic == 0
        # G is not updated between the two phases, so where G also steps its G(x, c') is computed once, with
        # grad, and the D phase gets it detached (speed.share_fake); otherwise the D phase makes it under no_grad.
        x_fake = mask = None
        if g_iteration and self.cfg.speed.share_fake:
            x_fake, mask = loss.fake(x_real, c_trg)

        # =========================== Train the discriminator =========================== #
        gp = self.iteration % self.cfg.loss.gp_every == 0
        terms = self._step(self.d_opt, *loss.discriminator_phase(x_real, c_trg, label_org, x_fake=x_fake, gp=gp))

        # ============================= Train the generator ============================= #
        if g_iteration:
            terms.update(self._step(self.g_opt, *loss.generator_phase(x_real, c_org, c_trg, label_trg,
                                                                         x_fake=x_fake, mask=mask)))
            if self.G_ema is not None:
                self._update_ema()

        return self._finish(terms)

    def _targets(self, label_org: torch.Tensor) -> torch.Tensor:
        """Target labels: a random permutation of the batch's own labels, as in the authors' code (about a quarter
        then equal the source at batch 8); with optim.targets_differ, each drawn from the six other expressions."""
        if self.cfg.optim.targets_differ:
            c_dim = self.cfg.model.c_dim
            return (label_org + torch.randint(1, c_dim, label_org.shape, device=self.device)) % c_dim
        rank, world = self.shard
        if world == 1:
            return label_org[torch.randperm(label_org.size(0), device=self.device)]
        # Permuted within one worker's share, a worker of 2 would get its own labels back half the time: every
        # rank gathers the global batch's labels and draws the same permutation of them, then takes its part.
        import torch.distributed as dist
        everyone = [torch.empty_like(label_org) for _ in range(world)]
        dist.all_gather(everyone, label_org)
        shared = torch.Generator().manual_seed(self.seed * 100_003 + self.iteration)
        perm = torch.randperm(world * len(label_org), generator=shared).to(self.device)
        return torch.cat(everyone)[perm[rank * len(label_org):(rank + 1) * len(label_org)]]

    @staticmethod
    def _step(opt, total, terms) -> dict:
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        return terms

    @torch.no_grad()
    def _update_ema(self) -> None:
        # A GAN's G wanders from step to step at a high learning rate; the average of its recent weights is the
        # steadier generator (ProGAN / StyleGAN's G_ema). Buffers (the norms' running stats) are copied.
        G, k = unwrap(self.G), 1.0 - self.cfg.optim.g_ema
        for avg, p in zip(self.G_ema.parameters(), G.parameters()):
            avg.lerp_(p.detach(), k)
        for avg, b in zip(self.G_ema.buffers(), G.buffers()):
            avg.copy_(b)

    def _finish(self, terms) -> dict[str, float]:
        self.iteration += 1
        out = {k: float(v.detach()) for k, v in terms.items()}
        out["lr"] = self.g_opt.param_groups[0]["lr"]
        return out

    def state_dict(self) -> dict:
        sd = {"G": unwrap(self.G).state_dict(), "D": unwrap(self.D).state_dict(),
              "g_opt": self.g_opt.state_dict(), "d_opt": self.d_opt.state_dict(),
              "iteration": self.iteration}
        if self.G_ema is not None:
            sd["G_ema"] = self.G_ema.state_dict()
        return sd

    def load_state_dict(self, sd: dict) -> None:
        unwrap(self.G).load_state_dict(sd["G"])
        if self.G_ema is not None:   # a checkpoint from before the average was kept starts it from G
            self.G_ema.load_state_dict(sd.get("G_ema", sd["G"]))
        unwrap(self.D).load_state_dict(sd["D"])
        self.g_opt.load_state_dict(sd["g_opt"])
        self.d_opt.load_state_dict(sd["d_opt"])
        self.iteration = int(sd["iteration"])


def start_run(cfg: Config, data, device="cpu", batch_size: int | None = None, rank: int = 0, world: int = 1,
              state: dict | None = None):
    """(engine, batches) as every training loop starts them: the initial weights seeded alike on every rank, the
    resumed `state` if any, then the step's stream (per rank and iteration), then this rank's batches."""
    torch.manual_seed(cfg.run.seed)
    engine = Engine.build(cfg, device)
    if state is not None:
        engine.load_state_dict(state)
    engine.seed_stream(cfg.run.seed, rank)
    batches = data.batches("train", batch_size or cfg.optim.batch_size, seed=cfg.run.seed + engine.iteration,
                           rank=rank, world_size=world, hflip=cfg.data.hflip)
    return engine, batches


def warmup_at_chance(cls_losses, c_dim: int, d_init_scale: float = 0.0) -> str | None:
    """A one-line warning when D's classifier ends its warm-up (optim.cls_warmup) still at chance, else None.

    cls_losses: D/loss_cls of the warm-up's last iterations. With PyTorch's default init the critic's logits
    barely depend on the face at first, and at some seeds its classifier stays at ln(c_dim) for the whole
    warm-up; the GAN then starts with nothing to read, and the demo's G never leaves the identity (docs/learning.md).
    d_init_scale: the run's model.d_init_scale, so the fix named is one the run does not already have.
    """
    if not cls_losses:
        return None
    mean, chance = sum(cls_losses) / len(cls_losses), math.log(c_dim)
    if mean < 0.95 * chance:
        return None
    return (f"D's classifier is still at chance after its warm-up (mean loss {mean:.2f} over the last "
            f"{len(cls_losses)} iterations; chance is ln {c_dim} = {chance:.2f}): G may never draw an expression. "
            f"Rerun with --set model.d_init_scale={1.0 if d_init_scale >= 0.7 else 0.7} (a larger init for D) "
            "or another --set run.seed")


def single_run(cfg: Config, data, device="cpu"):
    """Yield (engine, terms) after each of cfg.optim.num_iters steps: the run a fresh 1-worker usgan.train makes.

    Started as the worker loop starts (start_run), so the benchmarks and the ablation measure the same trajectory
    the Quick start produces, not a sibling of it.
    """
    engine, batches = start_run(cfg, data, device)
    for _ in range(cfg.optim.num_iters):
        yield engine, engine.train_step(*next(batches))
