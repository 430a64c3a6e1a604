"""Whether the `analysis` extra is installed: one line naming the fix instead of an import traceback.

Standard library only, so it runs where the extra is missing (a checkout set up with `setup.sh train` alone).
"""
from __future__ import annotations

import importlib
import sys

NEEDS = ("pandas", "scipy", "statsmodels", "matplotlib")


def exit_if_missing() -> None:
    """Exit with one `error:` line (code 1, as the report's other user errors) when the `analysis` extra is missing."""
    gone = [name for name in NEEDS if not _imports(name)]
    if gone:
        sys.exit(f"error: {', '.join(gone)} not installed (the report needs the 'analysis' extra): "
                 'bash scripts/setup.sh (or pip install -e ".[analysis]" in the checkout)')


def _imports(name: str) -> bool:
    try:
        importlib.import_module(name)   # not find_spec: an install broken inside fails here too
    except ModuleNotFoundError:
        return False
    return True


def preferences() -> int:
    """`usgan-preferences`: analysis.preferences.main, after the check."""
    exit_if_missing()
    from analysis.preferences import main

    return main()
