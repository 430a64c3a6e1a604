"""Shared helpers for the analysis tests: a real SQLite study database with the votes_long view, the CLI runner."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd

from vote_format import COLUMNS, VOTES_VIEW

ROOT = Path(__file__).resolve().parents[2]


def make_study_db(path: Path, votes: pd.DataFrame | None = None, methods: dict[str, list[str]] | None = None) -> Path:
    """Write a SQLite file whose `votes_long` view exposes `votes`, optionally with a `methods` view per study."""
    con = sqlite3.connect(path)
    # A normalised store behind the view, as the app has: analysis must read the view, not a table of that name.
    stored = [f"v_{c}" for c in COLUMNS]
    con.execute(f"CREATE TABLE answers (id INTEGER PRIMARY KEY, {', '.join(stored)})")
    con.execute(f"CREATE VIEW {VOTES_VIEW} AS SELECT "
                + ", ".join(f"{s} AS {c}" for s, c in zip(stored, COLUMNS)) + " FROM answers ORDER BY id")
    if votes is not None and len(votes):
        rows = votes.reindex(columns=list(COLUMNS)).astype(object)
        rows = rows.where(rows.notna(), None)
        con.executemany(f"INSERT INTO answers ({', '.join(stored)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                        rows.itertuples(index=False, name=None))
    if methods is not None:
        con.execute("CREATE TABLE study_methods (id INTEGER PRIMARY KEY, study TEXT, name TEXT)")
        con.executemany("INSERT INTO study_methods (study, name) VALUES (?, ?)",
                        [(s, m) for s, names in methods.items() for m in names])
        con.execute("CREATE VIEW methods AS SELECT study AS study_id, name AS method FROM study_methods ORDER BY id")
    con.commit()
    con.close()
    return path


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `python analysis/preferences.py ARGS` from the repo root, as a user would."""
    full_env = {**os.environ, "MPLBACKEND": "Agg", **(env or {})}
    # This checkout's packages, whichever checkout an editable install of the environment points at.
    full_env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "analysis/preferences.py", *args], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def one_clear_line(result: subprocess.CompletedProcess) -> str:
    """Assert the run failed with exactly one line on stderr and no traceback; return that line."""
    assert result.returncode != 0, result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1, result.stderr
    assert result.stdout == ""
    return lines[0]
