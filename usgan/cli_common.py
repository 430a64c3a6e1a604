"""What the command lines share: one-line errors, the config flags and config resolution, --device, --checkpoint.

Every bad input ends as a single `error: ...` line on stderr with exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import sys

from .config import Config, config_from_cli
from .errors import CheckpointError, ConfigError, DatasetError, UnknownExpression, UsageError, WeightsError
from .weights import KNOWN



EXPECTED_ERRORS = (UsageError, ConfigError, CheckpointError, DatasetError, UnknownExpression, WeightsError)

# The extra (pyproject.toml) that brings each optional package a command may import: `setup.sh train` installs
# only `train`, so after the Quick start's first command alone these are what is missing.
EXTRA_OF = {"skimage": "eval", "onnx": "eval", "onnxruntime": "eval", "onnxscript": "eval", "av": "eval",
            "dlib": "eval", "face_recognition": "eval", "face_recognition_models": "eval", "streamlit": "eval",
            "pandas": "analysis", "scipy": "analysis", "statsmodels": "analysis", "sqlalchemy": "study",
            "ray": "train", "tensorboard": "train", "optuna": "train", "matplotlib": "train", "xlrd": "train"}


def missing_package(e: ModuleNotFoundError, wanted: str | None = None) -> str | None:
    """One line naming the optional package a command could not import and how to install it; None if not ours.

    wanted: the package the command asked for, where e may name one of its own dependencies."""
    top = wanted or (e.name or "").split(".")[0]
    if top not in EXTRA_OF:
        return None
    extra = EXTRA_OF[top]
    why = "is not installed" if (e.name or "").split(".")[0] == top else f"cannot be imported ({e})"
    return (f"{top} {why} (this command needs the '{extra}' extra): bash scripts/setup.sh "
            f'(or pip install -e ".[{extra}]" in the checkout)')


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad flag as one `error:` line (no usage block), exit code 2."""

    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def parser(prog: str, doc: str) -> OneLineParser:
    return OneLineParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def add_device_flag(ap: argparse.ArgumentParser) -> None:
    """--device, defaulting to the GPU when there is one; a CUDA device this torch cannot use fails at parse time."""
    import torch

    ap.add_argument("--device", type=_device, default="cuda" if torch.cuda.is_available() else "cpu",
                    help="cpu, cuda or cuda:N (default: cuda when a GPU is visible)")


def _device(name: str) -> str:
    import torch

    try:
        dev = torch.device(name)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"unknown device {name!r}: use cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = ("this torch is a CPU-only build" if torch.version.cuda is None
                   else "torch sees no GPU (no NVIDIA driver, or CUDA_VISIBLE_DEVICES hides it)")
            raise argparse.ArgumentTypeError(f"{name!r} asked for, but {why}: use --device cpu, or run on a machine "
                                             "where nvidia-smi lists a GPU")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(f"{name!r} asked for, but only {torch.cuda.device_count()} GPU(s) are "
                                             "visible: use cuda:0 or another index below that")
    return name


def add_config_flags(ap: argparse.ArgumentParser, preset_help: str, config_help: str) -> None:
    """--preset, --config, --data and --set: what config_from_cli reads to build a run's config."""
    ap.add_argument("--preset", default=None, help=preset_help)
    ap.add_argument("--config", help=config_help)
    ap.add_argument("--data", action="append", metavar="KIND:PATH",
                    help="kdef:DIR, rafd:DIR, cfee:DIR, folder:DIR, manifest:CSV or synthetic; repeat to combine")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="any other setting")


def add_checkpoint_flag(ap: argparse.ArgumentParser, required: bool = False) -> None:
    """--checkpoint: a named weight or a path, resolved by usgan.checkpoints.load_weights (default: demo)."""
    ap.add_argument("--checkpoint", required=required,
                    help=f"named weights ({', '.join(KNOWN)}: see usgan-weights list), a run folder, engine.pt or a "
                    "*-G.ckpt" + ("" if required else " (default: demo, trained on synthetic faces only)"))


def resolve_config(ckpt_cfg: Config, a) -> Config:
    """The checkpoint's own config, unless --config or --preset names another; --data and --set override it."""
    cfg = config_from_cli(a, base=ckpt_cfg, flags={"data": "data.sources"})
    # The network always comes from the checkpoint; a config file may only change data and run settings.
    cfg.model = ckpt_cfg.model
    return cfg


def require(*packages: str) -> None:
    """Before any long work: a UsageError naming the first of these packages that does not import, and its extra.

    face_recognition goes through usgan.face_lib, which also catches face_recognition's quit() on missing models."""
    import importlib

    for name in packages:
        try:
            importlib.import_module("usgan.face_lib" if name == "face_recognition" else name)
        except ModuleNotFoundError as e:
            raise UsageError(missing_package(e, wanted=name)) from None


def run(main, argv=None, extra_errors=()) -> int:
    """Call main(argv); expected errors become one `error:` line and exit code 2."""
    try:
        return main(argv) or 0
    except EXPECTED_ERRORS + tuple(extra_errors) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:
        line = missing_package(e)
        if line is None:
            raise
        print(f"error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
