"""Every setting of a US-GAN run, with the paper's defaults in one place, and the named presets.

    from usgan.config import preset
    cfg = preset("demo", optim__num_iters=500)   # a CPU-sized run on the synthetic faces
    cfg = preset("paper")               # the authors' settings: 200k iterations, global batch 8, KDEF+RaFD+CFEE
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import ConfigError


@dataclass
class ModelConfig:
    image_size: int = 128
    c_dim: int = 7
    g_conv_dim: int = 64
    d_conv_dim: int = 64
    g_res_blocks: int = 1        # StarGAN: 6
    ultimate_skip: bool = True   # StarGAN: False
    d_repeat_num: int = 6
    identity_init: bool = False  # zero the last conv so G starts as the identity (needs the ultimate skip)
    label_norm: bool = False     # G: class-conditional scale and shift after every InstanceNorm (not in the paper)
    residual_blur: bool = False  # G: a fixed 3x3 blur of the change added through the skip (not in the paper)
    residual_scale: float = 1.0  # G: the change added through the skip is scale * tanh (not in the paper)
    d_kaiming_init: bool = False  # D: He-normal weights for its LeakyReLUs, zero biases (PyTorch's default: off)
    d_init_scale: float = 0.0     # D: its hidden convs He-normal times this, zero biases, heads as PyTorch's (0: off)
    resize_conv: bool = False     # G: up-sampling as nearest x2 + 3x3 conv, no checkerboard (not in the paper)
    # The paper's proposed extensions (its conclusion), not in its model:
    attention: bool = False           # G: also a mask m in [0, 1]; the output is x + m * change (GANimation's)
    intermediate_skips: bool = False  # G: U-Net skips from encoder to decoder, in place of the residual blocks


@dataclass
class LossConfig:
    lambda_cls: float = 1.0
    g_cls_scale: float = 1.0     # G's classification term is lambda_cls * this; D's stays lambda_cls (not in the paper)
    lambda_rec: float = 1.0      # StarGAN: 10
    lambda_gp: float = 10.0
    gp_every: int = 1            # the gradient penalty every k-th D step, weighted k (StyleGAN2's lazy regularisation)
    d_noise: float = 0.0         # std of Gaussian noise on every image D sees (instance noise; not in the paper)
    d_augment: bool = False      # random colour on every image D sees (DiffAugment's colour policy; not in the paper)
    d_shift: float = 0.0         # every image D sees moved by up to this share of its side (DiffAugment's translation; not in the paper)
    d_cutout: float = 0.0        # every image D sees has a square of this share of its side blanked (DiffAugment's cutout; not in the paper)
    d_blur: bool = False         # every image D sees low-passed by a fixed 3x3 blur: no period-2 gradient reaches G (not in the paper)
    cls_fake_source: float = 0.0  # weight of CE(D_cls(G(x, c')), c): D's classifier reads a fake as its source (not in the paper)
    lambda_mask: float = 0.0     # model.attention: weight of the mask's mean (GANimation's; not in the paper)
    lambda_mask_tv: float = 0.0  # model.attention: weight of the mask's total variation (GANimation's)


@dataclass
class OptimConfig:
    g_lr: float = 1e-4
    d_lr: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    n_critic: int = 5
    targets_differ: bool = False     # targets drawn from the six other expressions (authors: the labels shuffled)
    cls_warmup: int = 0              # first iterations: D's classifier alone, on real faces (not in the paper)
    d_warmup: int = 0                # first iterations (cls_warmup's count): D alone, G waits (not in the paper)
    g_ema: float = 0.0               # G's weight average, shown and exported instead of G: its decay (0: off)
    num_iters: int = 200_000
    num_iters_decay: int = 100_000   # the learning rate falls over the last num_iters_decay iterations
    # "linear": to 0 at the last iteration. "authors": their solver's arithmetic, lr / num_iters_decay subtracted
    # once every lr_update_step iterations (1e-4 falls to 0.9998e-4 over 100k: in effect constant). Old configs
    # without the key keep the linear schedule they were trained with; the paper presets set "authors".
    lr_schedule: str = "linear"
    lr_update_step: int = 5_000      # "authors" only
    batch_size: int = 8              # the global batch: split evenly across the DDP workers


@dataclass
class DataConfig:
    # Each source is "kind:path" (kdef:/data/KDEF, rafd:..., cfee:..., folder:..., manifest:file.csv) or "synthetic".
    sources: list[str] = field(default_factory=lambda: ["synthetic"])
    synthetic_identities: int = 120
    synthetic_seed: int = 0
    kdef_angles: list[str] = field(default_factory=lambda: ["S"])
    rafd_angles: list[str] = field(default_factory=lambda: ["090"])
    rafd_gazes: list[str] = field(default_factory=lambda: ["frontal"])
    test_fraction: float = 0.1       # of subjects, never of images: no face appears on both sides
    split_seed: int = 0
    align_faces: bool = False        # detect + align real photos with face_recognition before cropping
    # [eye height, eye gap] of aligned crops, fractions of the side (usgan/data/align.py); recorded beside the run's G
    align_eyes: list[float] = field(default_factory=lambda: [0.42, 0.34])
    # Absolute defaults: a `ray job submit` driver runs in a directory of Ray's choosing.
    cache_dir: str = "~/.cache/usgan"
    hflip: bool = True


@dataclass
class SpeedConfig:
    """How an iteration is computed, never what it computes (benchmarks/train_speed.py measures each switch)."""
    channels_last: bool = True       # NHWC activations and weights (oneDNN's native layout)
    bf16: bool = False               # bf16 autocast for G and D (AVX512-BF16/AMX or GPU); not bit-exact
    bf16_d: bool = True              # with bf16, also D and its gradient penalty (off: D stays fp32)
    compile: bool = False            # torch.compile G (D's gradient penalty needs double backward: eager)
    batch_d: bool = True             # D(real) and D(fake) as one forward on the concatenated batch
    share_fake: bool = True          # one G(x, c') with grad serves the D and the G phase of a G iteration
    freeze_d_in_g: bool = True       # no gradients for D's weights in the G phase (they were discarded)
    d_matmul: bool = True            # D's layers on <= 8x8 maps as unfold + matmul (usgan/matmul_conv.py)
    fused_adam: bool = True          # Adam's update as one fused kernel per optimizer (same arithmetic, other rounding)


@dataclass
class RunConfig:
    name: str = "usgan-demo"
    storage: str = "~/usgan-runs"     # a local dir, an NFS mount every node sees, or s3://bucket/prefix
    seed: int = 0
    log_every: int = 10
    sample_every: int = 100
    checkpoint_every: int = 200
    validate_every: int = 0          # iterations between held-out scores (0: off); Ray Tune sets it
    num_workers: int = 0             # 0: derive from the cluster (all GPUs, else CPU workers)
    gpus_per_worker: float = 0.0     # 0 with GPUs present means 1
    cpus_per_worker: float = 0.0     # 0: derived from the cluster's CPUs
    max_failures: int = 2


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    speed: SpeedConfig = field(default_factory=SpeedConfig)
    run: RunConfig = field(default_factory=RunConfig)
    preset: str = "paper"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def save(self, path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))


LR_SCHEDULES = ("authors", "linear")



def from_dict(d: dict) -> Config:
    """Build a Config from nested dicts, refusing unknown keys so typos don't pass silently."""
    cfg = Config()
    for section, values in (d or {}).items():
        if section == "preset":
            cfg.preset = str(values)
            continue
        if not hasattr(cfg, section) or not dataclasses.is_dataclass(getattr(cfg, section)):
            raise ConfigError(f"unknown config section '{section}'; known: model, loss, optim, data, speed, run")
        if not isinstance(values, dict):
            raise ConfigError(f"config section '{section}' must be a mapping, got {type(values).__name__}")
        sub = getattr(cfg, section)
        for k, v in values.items():
            if not hasattr(sub, k):
                known = ", ".join(f.name for f in dataclasses.fields(sub))
                raise ConfigError(f"unknown setting '{section}.{k}'; known in {section}: {known}")
            setattr(sub, k, _coerce(getattr(sub, k), v, f"{section}.{k}"))
    return cfg


def _coerce(default, value, name):
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                return value.lower() in ("1", "true", "yes", "on")
            return bool(value)
        if isinstance(default, list):
            kind = type(default[0]) if default else str     # a list of numbers stays numbers
            return [kind(v) for v in (value.split(",") if isinstance(value, str) else value)]
        return type(default)(value)
    except (TypeError, ValueError):
        raise ConfigError(f"setting '{name}' expects {type(default).__name__}, got {value!r}") from None


def set_value(cfg: Config, dotted: str, value) -> None:
    """Apply one override like 'loss.lambda_rec=10' (also accepts a bare field name if it is unique)."""
    section, _, key = dotted.rpartition(".")
    if not section:
        owners = [s for s in ("model", "loss", "optim", "data", "speed", "run") if hasattr(getattr(cfg, s), key)]
        if len(owners) != 1:
            raise ConfigError(f"unknown setting '{dotted}'; write it as section.name, e.g. loss.lambda_rec=10")
        section = owners[0]
    sub = getattr(cfg, section, None)
    if sub is None or not hasattr(sub, key):
        raise ConfigError(f"unknown setting '{dotted}'; see `python -m usgan.train --print-config`")
    setattr(sub, key, _coerce(getattr(sub, key), value, dotted))


def apply_overrides(cfg: Config, items) -> Config:
    """Apply `--set SECTION.KEY=VALUE` items in order."""
    for item in items or []:
        key, eq, value = item.partition("=")
        if not eq:
            raise ConfigError(f"--set {item!r} is not SECTION.KEY=VALUE, e.g. --set loss.lambda_rec=10")
        set_value(cfg, key.strip(), value.strip())
    return cfg


def validate(cfg: Config) -> Config:
    """Reject settings that cannot train, with one line naming the setting and the fix."""
    o, l, m = cfg.optim, cfg.loss, cfg.model
    checks = [
        (o.num_iters > 0, "optim.num_iters must be > 0"),
        (0 <= o.num_iters_decay <= o.num_iters, "optim.num_iters_decay must be between 0 and optim.num_iters"),
        (o.batch_size >= 1, "optim.batch_size must be >= 1"),
        (o.lr_schedule in LR_SCHEDULES, f"optim.lr_schedule must be one of {', '.join(LR_SCHEDULES)}, "
                                        f"not {o.lr_schedule!r}"),
        (o.lr_update_step >= 1, "optim.lr_update_step must be >= 1 (the authors' is 5000)"),
        (o.n_critic >= 1, "optim.n_critic must be >= 1"),
        (l.gp_every >= 1, "loss.gp_every must be >= 1 (1: the penalty at every D step, as in the paper)"),
        (o.g_lr > 0 and o.d_lr > 0, "learning rates must be > 0"),
        (min(l.lambda_cls, l.lambda_rec, l.lambda_gp, l.g_cls_scale) >= 0,
         "loss weights (lambda_*, g_cls_scale) must be >= 0"),
        (0 <= l.d_shift < 0.5 and 0 <= l.d_cutout < 1,
         "loss.d_shift must be in [0, 0.5) and loss.d_cutout in [0, 1): shares of the image side, e.g. 0.0625"),
        (m.image_size % (2 ** m.d_repeat_num) == 0,
         f"model.image_size must be a multiple of {2 ** m.d_repeat_num} (2**d_repeat_num)"),
        (m.c_dim == 7, "model.c_dim must be 7: the toolkit's label space is the seven KDEF expressions"),
        (m.ultimate_skip or not (m.identity_init or m.residual_blur or m.residual_scale != 1.0),
         "model.identity_init, residual_blur and residual_scale act through the ultimate skip; without it set them "
         "to false, false and 1"),
        (m.residual_scale > 0, "model.residual_scale must be > 0 (1 is the paper's)"),
        (m.d_init_scale >= 0 and not (m.d_init_scale and m.d_kaiming_init),
         "model.d_init_scale must be >= 0 and cannot be combined with model.d_kaiming_init; set one of them"),
        (m.ultimate_skip or not m.attention, "model.attention gates the change added through the ultimate skip; "
                                             "set model.ultimate_skip=true"),
        (m.g_res_blocks == 0 or not m.intermediate_skips,
         "model.intermediate_skips replaces the residual blocks; also set model.g_res_blocks=0"),
        (0 < cfg.data.test_fraction < 1, "data.test_fraction must be between 0 and 1"),
        (len(cfg.data.sources) > 0, "data.sources is empty; use 'synthetic' or kind:path"),
        (len(cfg.data.align_eyes) == 2 and all(0 < v < 1 for v in cfg.data.align_eyes),
         "data.align_eyes must be two fractions of the side, eye height and eye gap, e.g. 0.42,0.34"),
    ]
    for ok, msg in checks:
        if not ok:
            raise ConfigError(msg)
    return cfg


# ---------------------------------------------------------------------------------------------------- presets
def _paper(cfg: Config) -> None:
    cfg.data.sources = ["kdef:data/KDEF", "rafd:data/RaFD", "cfee:data/CFEE"]
    cfg.optim.lr_schedule = "authors"  # what produced the published weights (docs/training.md)
    cfg.run.name = "usgan-paper"


def _demo_paper(cfg: Config) -> None:
    """The paper's model and losses at the demo's CPU size: the baseline every demo switch is measured against."""
    cfg.data.sources = ["synthetic"]
    cfg.model.image_size = 64
    cfg.model.d_repeat_num = 5         # a 2x2 patch map at 64 px, as the paper's six layers give at 128 px
    cfg.model.g_conv_dim = 32
    cfg.model.d_conv_dim = 32
    cfg.optim.num_iters = 600
    cfg.optim.num_iters_decay = 300
    cfg.optim.batch_size = 16
    cfg.optim.g_lr = cfg.optim.d_lr = 2e-4
    cfg.optim.n_critic = 5
    cfg.run.sample_every = 200
    cfg.run.checkpoint_every = 200
    cfg.run.name = "usgan-demo-paper"


def _demo(cfg: Config) -> None:
    """Sized to train on 2 CPU cores in under ten minutes and draw visible expressions (docs/learning.md)."""
    _demo_paper(cfg)
    # Not in the paper, each measured in docs/learning.md: without them G fools D's classifier with texture for
    # thousands of iterations before it draws an expression, and cannot reach a dark open mouth at all.
    # residual_blur stays off: with d_shift below it only softens G's strokes (with it, four seeds read 2 points
    # lower under the panel's median reader, their weakest expression 8 points lower, outputs further from the target).
    cfg.model.identity_init = cfg.model.label_norm = True
    # PyTorch's default init leaves D's classifier at chance through the warm-up on some seeds and CPUs, and then G
    # never moves (an Intel Xeon with AMX: two of four seeds; an AMD EPYC: one of five); He init scaled by 0.7 starts
    # it at every seed tried (docs/learning.md).
    cfg.model.d_init_scale = 0.7
    cfg.model.residual_scale = 2.0
    # A transposed conv's free output phases drew checkerboards inside open mouths; nearest x2 + 3x3 conv (the same
    # multiply-adds) cannot (two seeds on validation: outputs 0.73x the input's L1 from the target against 0.78x).
    cfg.model.resize_conv = True
    cfg.loss.d_augment, cfg.loss.cls_fake_source = True, 0.5
    # D sees every image moved by up to 4 px: its classifier can no longer memorise the ~750 training faces, so
    # it keeps reading expressions that G must draw (three seeds: 77 % held-out against 69 % without).
    cfg.loss.d_shift = 0.0625
    # Above StarGAN's cycle weight of 10 (US-GAN's is 1): at 1, G repaints the pixels an expression leaves alone
    # (their error 0.020 of the 0.041 L1 to the target, against the input's 0.028 in all); at 10 they keep
    # 0.006. With d_shift, 10 left held-out outputs at the input's distance (0.0284) and 15 below it (0.0272).
    cfg.loss.lambda_rec = 15.0
    # The schedule: D's classifier first (seconds), then G every iteration, in small fast steps, toward a target
    # that is never the source; the run shows and exports the average of G's recent weights. The readers kept
    # climbing past 2,100 iterations, so the run is 3,300 long (the best point on validation), and the
    # gradient penalty on every fourth D step takes a fifth off each of them. A constant rate: a decay over the last
    # 600 ended lower (docs/learning.md).
    cfg.optim.cls_warmup, cfg.optim.n_critic, cfg.optim.targets_differ = 600, 1, True
    cfg.optim.batch_size, cfg.optim.g_lr, cfg.optim.d_lr, cfg.optim.g_ema = 8, 4e-4, 4e-4, 0.995
    cfg.optim.num_iters, cfg.optim.num_iters_decay = 3300, 0
    cfg.loss.gp_every = 4
    cfg.speed.bf16 = True              # where the hardware has native bf16 (else fp32): 1.65x on a 2-core EPYC
    # G's step fused into C++ kernels (a C++ compiler needed, else eager with a warning): 134 -> 94-105 ms a demo
    # step on a 2-core Xeon, after a 30 s compile. Seed 0: of seeds 0 and 1, read on the validation people, its
    # outputs sit closest to the target and its weakest expression reads highest (docs/learning.md).
    cfg.speed.compile = True
    cfg.run.seed = 0
    cfg.run.checkpoint_every = 300
    cfg.run.name = "usgan-demo"


def _stargan(cfg: Config) -> None:
    _paper(cfg)
    cfg.model.g_res_blocks, cfg.model.ultimate_skip = 6, False
    cfg.loss.lambda_rec = 10.0
    cfg.run.name = "stargan-paper"


def _tiny(cfg: Config) -> None:
    """For tests: seconds per run."""
    _demo_paper(cfg)
    cfg.data.synthetic_identities = 12
    cfg.model.g_conv_dim = cfg.model.d_conv_dim = 8
    cfg.optim.num_iters, cfg.optim.num_iters_decay, cfg.optim.batch_size = 6, 3, 4
    cfg.run.log_every, cfg.run.sample_every, cfg.run.checkpoint_every = 2, 3, 3
    cfg.run.name = "usgan-tiny"


PRESETS = {"paper": _paper, "demo": _demo, "demo-paper": _demo_paper, "stargan": _stargan, "tiny": _tiny}


def preset(name: str = "demo", **overrides) -> Config:
    """A fresh Config of the named preset, with `section.key=value`-style overrides as keywords (dots as __)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset '{name}'; choose one of: {', '.join(PRESETS)}")
    cfg = Config(preset=name)
    PRESETS[name](cfg)
    for k, v in overrides.items():
        set_value(cfg, k.replace("__", "."), v)
    return cfg


def load(path) -> Config:
    """Read a YAML config file (a `preset:` key picks the base, other sections override it)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist; pass a YAML file written by --print-config or a run")
    try:
        d = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {p} is not valid YAML ({str(e).splitlines()[0]}); fix the syntax") from None
    if not isinstance(d, dict):
        raise ConfigError(f"config file {p} must hold a mapping of sections, not a {type(d).__name__}")
    base = preset(d.pop("preset", "paper"))
    merged = from_dict({**base.to_dict(), **{k: {**base.to_dict().get(k, {}), **v} if isinstance(v, dict) else v
                                            for k, v in d.items()}})
    merged.preset = base.preset
    return merged


# The training flags (argparse dest) -> setting; a parser offers whichever of them it needs.
TRAINING_FLAGS = {"data": "data.sources", "iters": "optim.num_iters", "decay_iters": "optim.num_iters_decay",
                  "batch_size": "optim.batch_size", "lambda_cls": "loss.lambda_cls", "lambda_rec": "loss.lambda_rec",
                  "lambda_gp": "loss.lambda_gp", "num_workers": "run.num_workers",
                  "gpus_per_worker": "run.gpus_per_worker", "cpus_per_worker": "run.cpus_per_worker",
                  "name": "run.name", "storage": "run.storage"}


def config_from_cli(a, base: Config | None = None, flags: dict = TRAINING_FLAGS) -> Config:
    """--preset or --config (else `base`, else demo), then the `flags` given, then --set; not yet validated."""
    preset_name, config_path = getattr(a, "preset", None), getattr(a, "config", None)
    if preset_name and config_path:
        raise ConfigError("give either --preset or --config (a config file names its preset inside)")
    cfg = load(config_path) if config_path else preset(preset_name) if preset_name else base or preset("demo")
    for flag, key in flags.items():
        if getattr(a, flag, None) is not None:
            set_value(cfg, key, getattr(a, flag))
    if "iters" in flags and getattr(a, "iters", None) is not None and getattr(a, "decay_iters", None) is None:
        # A shorter run still trains at full rate first: the decay takes at most its second half.
        cfg.optim.num_iters_decay = min(cfg.optim.num_iters_decay, cfg.optim.num_iters // 2)
    return apply_overrides(cfg, getattr(a, "set", None) or [])
