"""Whether the `analysis` extra is installed: one line naming the fix instead of an import traceback.

Standard library only, so it runs where the extra is missing (a checkout set up with `setup.sh train` alone).
"""
from __future__ import annotations

import importlib
import sys

NEEDS = ("pandas", "scipy", "statsmodels", "matplotlib")


def exit_if_missing() -> None:
    """Exit with one `error:` line (code 1, as the report's other user errors) when the `analysis` extra is missing."""
    gone = not_importable(NEEDS)
    if gone:
        sys.exit(f"error: {', '.join(gone)} not installed (the report needs the 'analysis' extra): "
                 'bash scripts/setup.sh (or pip install -e ".[analysis]" in the checkout)')


def not_importable(names) -> list[str]:
    """Those of these packages that do not import (the study server's check uses it too)."""
    gone = []
    for name in names:
        try:
            importlib.import_module(name)   # not find_spec: an install broken inside fails here too
        except ModuleNotFoundError:
            gone.append(name)
    return gone


def preferences() -> int:
    """`usgan-preferences`: analysis.preferences.main, after the check."""
    exit_if_missing()
    from analysis.preferences import main

    return main()
