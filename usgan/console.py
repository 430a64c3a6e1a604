"""Console scripts (`usgan-evaluate`, ...; see pyproject.toml) for the CLIs whose `__main__` wraps main in cli_common.run.

A console script can only name a function, and these mains raise their expected errors for `run` to print
as one line; the wrappers keep `usgan-evaluate` and `python -m usgan.evaluate` identical.
"""
from __future__ import annotations

from importlib import import_module

from .cli_common import run


def _run(module: str) -> int:
    # Imported inside run, so that a missing optional package is its one-line error too.
    return run(lambda argv: import_module(f"usgan.{module}").main(argv))


def evaluate() -> int:
    return _run("evaluate")


def synthesize() -> int:
    return _run("synthesize")


def export() -> int:
    return _run("export")


def ablation() -> int:
    return _run("ablation")


def demo_stimuli() -> int:
    return _run("demo_stimuli")


def weights() -> int:
    return _run("weights.__main__")
