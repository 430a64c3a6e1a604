"""Read and write generator checkpoints: ours, the authors' released US-GAN files, and StarGAN's.

Ours is a directory holding `engine.pt` (G, D, optimizers, iteration, RNG, config) plus the authors'
plain state-dict files `{iteration}-G.ckpt` / `{iteration}-D.ckpt`, so their tools read ours too. A plain
`NAME.ckpt` with a `NAME.yaml` beside it (as the shipped demo weights, usgan/weights/) takes its config from it,
and `NAME.json` says what it was trained on and the crop geometry of that data. Every file is read with
`torch.load(weights_only=True)`: tensors and plain containers only, so a tampered file cannot run code.

    w = load_weights("authors")        # a name (usgan-weights list) or a path; w.G, w.cfg, w.crop, w.line()
"""
from __future__ import annotations

import json
import pickle
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from . import weights as named
from .config import Config, from_dict, load, preset
from .errors import CheckpointError, ConfigError
from .data import training_crop
from .data.align import DEFAULT_CROP, CropGeometry
from .models import Generator, ResizeConv

ENGINE_FILE = "engine.pt"
SHIPPED_G = named.weight_path("demo")   # see usgan/weights/README.md



def shown_generator(engine_state: dict) -> dict:
    """The G a run shows and exports: its weight average where it keeps one (optim.g_ema), else G itself."""
    return engine_state.get("G_ema", engine_state["G"])


def save_checkpoint(directory, engine, cfg: Config, extra: dict | None = None) -> Path:
    """Everything needed to resume, plus G and D in the authors' plain state-dict layout."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    sd = engine.state_dict()
    about = {"trained_on": f"{', '.join(cfg.data.sources)} at {cfg.model.image_size} px (iteration {sd['iteration']})",
             "crop": training_crop(cfg.data).to_dict()}
    torch.save({**sd, "config": cfg.to_dict(), "rng": torch.get_rng_state(), "about": about, **(extra or {})},
               d / ENGINE_FILE)
    torch.save(shown_generator(sd), d / f"{sd['iteration']}-G.ckpt")
    # The fixed blur and scale have no weights: without its config a demo G would load as another network.
    cfg.save(d / f"{sd['iteration']}-G.yaml")
    # Synthesis must crop photos as this run's data was cropped.
    (d / f"{sd['iteration']}-G.json").write_text(json.dumps(about, indent=1) + "\n")
    torch.save(sd["D"], d / f"{sd['iteration']}-D.ckpt")
    return d


def _generator_for(state: dict, cfg: Config | None) -> tuple[Generator, str]:
    """Infer the architecture from the keys: StarGAN repeats the residual block up to main.14."""
    blocks = len({k.split(".")[1] for k in state if re.match(r"main\.\d+\.main\.", k)})
    c_dim = state["main.0.weight"].shape[1] - 3
    conv_dim = state["main.0.weight"].shape[0]
    # The extensions show in the weights: a mask head, and a last conv reading the decoder's and the encoder's maps.
    attention = "attention.0.weight" in state
    top_convs = [k for k in state if re.fullmatch(r"main\.\d+\.weight", k)]   # the blocks' are main.N.main.M
    last_conv = max(top_convs, key=lambda k: int(k.split(".")[1]))
    skips = state[last_conv].shape[1] == 2 * conv_dim
    # The paper's up-sampling convs are 4x4 transposed, resize convs 3x3.
    resize = any(state[k].shape[-1] == 3 for k in top_convs)
    if cfg is not None:
        skip = cfg.model.ultimate_skip
        for name, has in (("attention", attention), ("intermediate_skips", skips), ("resize_conv", resize)):
            if getattr(cfg.model, name) != has:
                raise CheckpointError(f"the config beside these weights says model.{name}={getattr(cfg.model, name)} "
                                      f"but the weights were trained with {name} {'on' if has else 'off'}; "
                                      "pass the config the run wrote with them")
    else:
        # The authors' files carry no flag: one block means US-GAN (skip on), six means StarGAN (skip off).
        skip = blocks == 1 or attention or skips
    kind = "usgan" if skip else "stargan"
    label_norm = any(".label_affine." in k for k in state)
    # A fixed blur and scale hold no weights: only the config knows them.
    blur = cfg is not None and cfg.model.residual_blur
    scale = cfg.model.residual_scale if cfg is not None else 1.0
    return Generator(c_dim=c_dim, conv_dim=conv_dim, res_blocks=blocks, ultimate_skip=skip, label_norm=label_norm,
                     residual_blur=blur, residual_scale=scale, attention=attention, intermediate_skips=skips,
                     resize_conv=resize), kind


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


def read_checkpoint(p: Path):
    """torch.load with weights_only=True; a file that needs more (arbitrary Python objects) is refused."""
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "GLOBAL" in str(e):     # torch names the class or function the file asks to import
            raise CheckpointError(f"{p} holds Python objects besides tensors and is not loaded: unpickling them "
                                  "could run code. If you trust it, re-save its state dict with torch.save") from None
        raise CheckpointError(f"cannot read checkpoint {p} (UnpicklingError); is it a torch.save file?") from None
    except Exception as e:  # noqa: BLE001 - torch raises many types for a bad file
        raise CheckpointError(f"cannot read checkpoint {p} ({type(e).__name__}); is it a torch.save file?") from None


def load_generator(path, ultimate_skip: bool | None = None) -> tuple[Generator, Config]:
    """A generator from our run directory/checkpoint, a `*-G.ckpt`, or `usgan_87_G.ckpt`; returns it and a Config."""
    G, cfg, _, _ = _load(path, ultimate_skip)
    return G, cfg


def _load(path, ultimate_skip=None) -> tuple[Generator, Config, dict | None, bool]:
    """G, its config, what the file says about itself (or None), and whether the config came from the file."""
    p = checkpoint_file(path)
    blob = read_checkpoint(p)
    cfg, about = None, None
    if isinstance(blob, dict) and "G" in blob and "config" in blob:
        about = blob.get("about")
        try:
            cfg = from_dict(blob["config"])
        except ConfigError:
            cfg = None
        state = shown_generator(blob)
    elif isinstance(blob, dict) and "main.0.weight" in blob:
        state = blob
    else:
        raise CheckpointError(f"{p} holds neither a generator state dict nor one of our engine checkpoints")
    if about is None and p.suffix != ".pt" and p.with_suffix(".json").is_file():
        about = _read_about(p.with_suffix(".json"))
    if cfg is None and p.with_suffix(".yaml").is_file():
        cfg = load(p.with_suffix(".yaml"))   # a plain state dict shipped with its config
    elif cfg is None and (p.parent / ENGINE_FILE).is_file():
        # An {iter}-G.ckpt inside one of our checkpoint folders (older ones have no YAML): the engine knows.
        engine = read_checkpoint(p.parent / ENGINE_FILE)
        cfg, about = from_dict(engine["config"]), about or engine.get("about")
    from_file = cfg is not None
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
        cfg.model.attention, cfg.model.intermediate_skips = G.attention is not None, bool(G.skip_from)
        cfg.model.resize_conv = any(isinstance(m, ResizeConv) for m in G.modules())
    return G.eval(), cfg, about, from_file


def _read_about(path: Path) -> dict | None:
    try:
        about = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return about if isinstance(about, dict) else None


@dataclass
class LoadedWeights:
    """A generator with its config, the crop geometry it expects, and what to tell a user about it."""
    G: Generator
    cfg: Config
    crop: CropGeometry
    source: str        # the name or the path it was asked for by
    label: str         # how a result names it
    trained_on: str

    @property
    def size(self) -> int:
        return self.cfg.model.image_size

    def line(self) -> str:
        return f"Made with {self.label}, trained on {self.trained_on}."


def load_weights(spec=None, ultimate_skip: bool | None = None) -> LoadedWeights:
    """A named weight (usgan-weights list; none: demo) or a checkpoint path, with the crop its data had."""
    r = named.resolve(spec)
    G, cfg, about, from_file = _load(r.path, ultimate_skip)
    source = r.known.name if r.known else str(r.path)
    # A config-less plain file may be a known one fetched by hand: its blob id says so.
    known = r.known or (None if from_file else named.identify(checkpoint_file(r.path)))
    if known is not None:
        return LoadedWeights(G, cfg, known.crop, source, f"the '{known.name}' weights ({known.file})", known.trained_on)
    try:
        crop = (CropGeometry(**about["crop"]) if about and "crop" in about
                else training_crop(cfg.data) if from_file else DEFAULT_CROP)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"the crop geometry recorded beside {r.path} is unusable ({e}); fix or delete "
                              "the record") from None
    trained_on = (about or {}).get("trained_on") or (
        f"{', '.join(cfg.data.sources)} at {cfg.model.image_size} px" if from_file else "unknown data (no config "
        "beside the file)")
    return LoadedWeights(G, cfg, crop, source, str(r.path), trained_on)
