"""`usgan-study`: `streamlit run study_app/main.py` for an installed package, where no checkout path exists to type.

Extra arguments go to streamlit (`usgan-study --server.port 8600`).
"""
from __future__ import annotations

import sys
from pathlib import Path

MAIN = Path(__file__).resolve().parent / "main.py"


def serve() -> int:
    from analysis.installed import not_importable   # the study extra brings the analysis extra

    gone = not_importable(("streamlit", "sqlalchemy"))
    if gone:   # a checkout set up with `setup.sh train` alone
        sys.exit(f"error: {', '.join(gone)} not installed (the study app needs the 'study' extra): "
                 'bash scripts/setup.sh (or pip install -e ".[study]" in the checkout)')
    from streamlit.web import cli

    sys.argv = ["streamlit", "run", str(MAIN), *sys.argv[1:]]
    return cli.main()
