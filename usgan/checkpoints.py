"""Read and write generator checkpoints: ours, the authors' released US-GAN files, and StarGAN's.

Ours is a directory holding `engine.pt` (G, D, optimizers, iteration, RNG, config) plus the authors'
plain state-dict files `{iteration}-G.ckpt` / `{iteration}-D.ckpt`, so their tools read ours too. A plain
`NAME.ckpt` with a `NAME.yaml` beside it (as the shipped demo weights, usgan/weights/) takes its config from it.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch

from .config import Config, ConfigError, from_dict, load, preset
from .models import Generator

ENGINE_FILE = "engine.pt"
SHIPPED_G = Path(__file__).resolve().parent / "weights" / "demo-G.ckpt"   # see usgan/weights/README.md


class CheckpointError(ValueError):
    """A checkpoint path that cannot be loaded; the message names the problem and the fix."""


def shown_generator(engine_state: dict) -> dict:
    """The G a run shows and exports: its weight average where it keeps one (optim.g_ema), else G itself."""
    return engine_state.get("G_ema", engine_state["G"])


def save_checkpoint(directory, engine, cfg: Config, extra: dict | None = None) -> Path:
    """Everything needed to resume, plus G and D in the authors' plain state-dict layout."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    sd = engine.state_dict()
    torch.save({**sd, "config": cfg.to_dict(), "rng": torch.get_rng_state(), **(extra or {})}, d / ENGINE_FILE)
    torch.save(shown_generator(sd), d / f"{sd['iteration']}-G.ckpt")
    # The fixed blur and scale have no weights: without its config a demo G would load as another network.
    cfg.save(d / f"{sd['iteration']}-G.yaml")
    torch.save(sd["D"], d / f"{sd['iteration']}-D.ckpt")
    return d


def _generator_for(state: dict, cfg: Config | None) -> tuple[Generator, str]:
    """Infer the architecture from the keys: StarGAN repeats the residual block up to main.14."""
    blocks = len({k.split(".")[1] for k in state if re.match(r"main\.\d+\.main\.", k)})
    c_dim = state["main.0.weight"].shape[1] - 3
    conv_dim = state["main.0.weight"].shape[0]
    if cfg is not None:
        skip = cfg.model.ultimate_skip
    else:
        # The authors' files carry no flag: one block means US-GAN (skip on), six means StarGAN (skip off).
        skip = blocks == 1
    kind = "usgan" if skip else "stargan"
    label_norm = any(".label_affine." in k for k in state)
    # A fixed blur and scale hold no weights: only the config knows them.
    blur = cfg is not None and cfg.model.residual_blur
    scale = cfg.model.residual_scale if cfg is not None else 1.0
    return Generator(c_dim=c_dim, conv_dim=conv_dim, res_blocks=blocks, ultimate_skip=skip, label_norm=label_norm,
                     residual_blur=blur, residual_scale=scale), kind


def checkpoint_file(path) -> Path:
    """The file a checkpoint path means: itself, or the newest engine.pt under a run or checkpoint folder."""
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"checkpoint {p} does not exist; pass a run's checkpoint folder or a *-G.ckpt file")
    if not p.is_dir():
        return p
    if (p / ENGINE_FILE).is_file():
        return p / ENGINE_FILE
    found = sorted(p.rglob(ENGINE_FILE), key=lambda f: f.stat().st_mtime)
    if not found:
        raise CheckpointError(f"no {ENGINE_FILE} under {p}; pass a checkpoint folder of a finished run")
    return found[-1]


def load_generator(path, ultimate_skip: bool | None = None) -> tuple[Generator, Config]:
    """A generator from our run directory/checkpoint, a `*-G.ckpt`, or `usgan_87_G.ckpt`; returns it and a Config."""
    p = checkpoint_file(path)
    try:
        blob = torch.load(p, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - torch raises many types for a bad file
        raise CheckpointError(f"cannot read checkpoint {p} ({type(e).__name__}); is it a torch.save file?") from None
    cfg = None
    if isinstance(blob, dict) and "G" in blob and "config" in blob:
        try:
            cfg = from_dict(blob["config"])
        except ConfigError:
            cfg = None
        state = shown_generator(blob)
    elif isinstance(blob, dict) and "main.0.weight" in blob:
        state = blob
    else:
        raise CheckpointError(f"{p} holds neither a generator state dict nor one of our engine checkpoints")
    if cfg is None and p.with_suffix(".yaml").is_file():
        cfg = load(p.with_suffix(".yaml"))   # a plain state dict shipped with its config
    elif cfg is None and (p.parent / ENGINE_FILE).is_file():
        # An {iter}-G.ckpt inside one of our checkpoint folders (older ones have no YAML): the engine knows.
        cfg = from_dict(torch.load(p.parent / ENGINE_FILE, map_location="cpu", weights_only=False)["config"])
    G, kind = _generator_for(state, cfg)
    if ultimate_skip is not None:
        G.ultimate_skip = ultimate_skip
    try:
        G.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{p} does not match the generator layout ({str(e).splitlines()[0]})") from None
    if cfg is None:
        cfg = preset("stargan" if kind == "stargan" else "paper")
        cfg.model.c_dim, cfg.model.g_conv_dim = G.c_dim, state["main.0.weight"].shape[0]
        cfg.model.g_res_blocks, cfg.model.ultimate_skip = len({k.split(".")[1] for k in state if ".main." in k}), G.ultimate_skip
    return G.eval(), cfg
