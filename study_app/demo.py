"""The demo study: built once from study_app/demo_stimuli so a fresh checkout has something to click."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from sqlalchemy import select

from study_app.build import StudyBuildError, StudySpec, build_study, find_inputs, find_output
from study_app.db import Study, StudyDB
from study_app.settings import EXPRESSIONS, demo_stimuli_dir

DEMO_NAME = "demo"
DEMO_TRIALS = 6
DEMO_CATCH = 1
_lock = threading.Lock()


def demo_spec(stimuli: Path, out: Path) -> StudySpec | None:
    """A spec over the demo folder, using the expressions every method has; None if the folder is absent."""
    methods_dir = stimuli / "methods"
    if not (stimuli / "inputs").is_dir() or not methods_dir.is_dir():
        return None
    methods = {p.name: p for p in sorted(methods_dir.iterdir()) if p.is_dir()}
    try:
        faces = find_inputs(stimuli / "inputs")
    except StudyBuildError:
        return None
    expressions = tuple(e for e in EXPRESSIONS
                        if all(find_output(d, f, e) for d in methods.values() for f in faces))
    if len(methods) < 2 or not expressions:
        return None
    n_items = len(faces) * len(expressions)
    return StudySpec(inputs=stimuli / "inputs", methods=methods, out=out, name=DEMO_NAME, seed=2020,
                     expressions=expressions, catch_trials=DEMO_CATCH,
                     trials_per_participant=min(DEMO_TRIALS, n_items), completion_code="DEMO-DONE")


def active_study_id(db: StudyDB) -> int | None:
    """The study participants take: `USGAN_STUDY_NAME` if set, else the most recently built one."""
    wanted = os.environ.get("USGAN_STUDY_NAME")
    with db.read() as s:
        query = select(Study.id).order_by(Study.id.desc()).limit(1)
        if wanted:
            query = select(Study.id).where(Study.name == wanted)
        return s.scalar(query)


def ensure_demo_study(db: StudyDB) -> int | None:
    """The active study, building the demo first when the database has none; idempotent and race-safe."""
    study_id = active_study_id(db)
    if study_id is not None or os.environ.get("USGAN_STUDY_NAME"):
        return study_id
    # Threads of one server queue here; other processes are settled by the unique study name.
    with _lock:
        study_id = active_study_id(db)
        if study_id is not None:
            return study_id
        spec = demo_spec(demo_stimuli_dir(), db.path.parent / "studies" / DEMO_NAME)
        if spec is None:
            return None
        try:
            build_study(spec, db)
        except StudyBuildError:
            pass  # another process built it first; its row is the one to use
        return active_study_id(db)
