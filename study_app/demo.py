"""The demo study: built once from study_app/demo_stimuli, only where asked for (`--demo`, USGAN_STUDY_DEMO=1)."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import select

from study_app.build import StudyBuildError, StudySpec, build_study, find_inputs, find_output
from study_app.db import StudyDB
from study_app.models import Study
from study_app.settings import EXPRESSIONS, demo_stimuli_dir
from study_app.spec import StudyOptions

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
    options = StudyOptions(catch_trials=DEMO_CATCH, exclude_after_failed_checks=DEMO_CATCH,
                           trials_per_participant=min(DEMO_TRIALS, n_items), completion_code="DEMO-DONE",
                           recruitment="link")
    return StudySpec(inputs=stimuli / "inputs", methods=methods, out=out, name=DEMO_NAME, seed=2020,
                     expressions=expressions, options=options)


def study_named(db: StudyDB, name: str) -> int | None:
    """The id of the study with this name, or None."""
    with db.read() as s:
        return s.scalar(select(Study.id).where(Study.name == name))


def ensure_demo_study(db: StudyDB) -> int | None:
    """The demo study's id, building it first if needed; idempotent and race-safe. None without demo stimuli."""
    study_id = study_named(db, DEMO_NAME)
    if study_id is not None:
        return study_id
    # Threads of one server queue here; other processes are settled by the unique study name.
    with _lock:
        study_id = study_named(db, DEMO_NAME)
        if study_id is not None:
            return study_id
        spec = demo_spec(demo_stimuli_dir(), db.path.parent / "studies" / DEMO_NAME)
        if spec is None:
            return None
        try:
            build_study(spec, db)
        except StudyBuildError:
            pass  # another process built it first; its row is the one to use
        return study_named(db, DEMO_NAME)
