"""Helpers for the study_app tests: stimulus folders drawn with PIL, study specs, the pages under AppTest."""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageDraw
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from study_app import participation as part
from study_app.build import StudySpec, build_study
from study_app.db import StudyDB
from study_app.models import Candidate, Trial
from study_app.settings import EXPRESSIONS, REPO_ROOT

MAIN = str(REPO_ROOT / "study_app" / "main.py")
ADMIN = str(REPO_ROOT / "study_app" / "pages" / "admin.py")

METHODS = ("StarGAN", "STGAN", "GANimation", "USGAN")
FACES = ("face01", "face02")


def draw_face(path: Path, seed: int, size: int = 96) -> None:
    """A distinct small image (random blobs), so every file has different bytes."""
    rng = random.Random(seed)
    img = Image.new("RGB", (size, size), tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(img)
    for _ in range(6):
        x0, y0 = rng.randrange(size // 2), rng.randrange(size // 2)
        draw.ellipse((x0, y0, x0 + rng.randrange(8, size // 2), y0 + rng.randrange(8, size // 2)),
                     fill=tuple(rng.randrange(256) for _ in range(3)))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def make_stimuli(root: Path, faces=FACES, methods=METHODS, expressions=EXPRESSIONS, flat_for=()) -> Path:
    """inputs/<face>.png and methods/<M>/<face>/<expr>.png (or <face>_<expr>.png for methods in flat_for)."""
    seed = 0
    for face in faces:
        draw_face(root / "inputs" / f"{face}.png", seed := seed + 1)
    for method in methods:
        for face in faces:
            for expr in expressions:
                name = f"{face}_{expr}.png" if method in flat_for else f"{face}/{expr}.png"
                draw_face(root / "methods" / method / name, seed := seed + 1)
    return root


def spec_for(stimuli: Path, out: Path, **kw) -> StudySpec:
    """A study spec over a stimulus folder with all four methods; keywords are settings, as in a study file."""
    settings = dict(inputs=stimuli / "inputs", methods={m: stimuli / "methods" / m for m in METHODS}, out=out,
                    name="test", seed=7, expressions=("happy", "sad", "angry"), catch_trials=1,
                    exclude_after_failed_checks=1, trials_per_participant=3, completion_code="DONE123",
                    image_size=64)
    return StudySpec.from_settings(settings | kw)


CONSENT_MD = """\
# Which face edit looks best?

Researcher: A. Researcher, Example University (a.researcher@example.org). Ethics approval: EX-2026-001.
There are {screens} screens, about {minutes} minutes. Answers are kept for five years, without your Prolific id.
"""


def prolific_fields(folder: Path, **kw) -> dict:
    """What a Prolific study needs beyond spec_for's defaults: 2 catch trials, Prolific's rule, a consent text."""
    folder.mkdir(parents=True, exist_ok=True)
    consent = folder / "consent.md"
    consent.write_text(CONSENT_MD)
    return dict(recruitment="prolific", catch_trials=2, exclude_after_failed_checks=2, consent=consent) | kw


def build_into(db_path: Path, stimuli: Path, tmp_path: Path, name: str, **kw) -> int:
    """Build a study named `name` into the database file (closed again after, as the server opens its own)."""
    db = StudyDB(db_path)
    try:
        return build_study(spec_for(stimuli, tmp_path / name, name=name, **kw), db)
    finally:
        db.dispose()


def new_app(**params) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=60)
    for k, v in params.items():
        at.query_params[k] = v
    return at.run()


def proto_texts(at: AppTest) -> str:
    """Every element's protobuf as text: labels, captions, image URLs, markdown bodies, help texts."""
    out = []

    def walk(node):
        if getattr(node, "proto", None) is not None:
            out.append(str(node.proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(out)


def assert_no_method_names(at: AppTest) -> None:
    blob = proto_texts(at).lower()
    for m in METHODS:
        assert m.lower() not in blob


def consent_and_start(at: AppTest) -> AppTest:
    assert "agree" in at.checkbox[0].label
    assert at.button[0].disabled  # no participation without consent
    at.checkbox[0].check().run()
    at.button[0].click().run()
    assert at.title[0].value == "Instructions"
    at.button(key="instructions_go").click().run()
    return at


def screen_text(at: AppTest) -> str:
    return at.get("progress")[0].proto.text


def answer(at: AppTest, position: int = 0) -> AppTest:
    for radio in at.radio:
        radio.set_value(position)
    at.button[0].click().run()
    assert not at.exception
    return at


def trial_labels(db, trial_id) -> list[str]:
    """The method labels of a trial's candidates in screen order (what the participant never sees)."""
    with db.read() as s:
        layout = s.get(Trial, trial_id).layout
        labels = dict(s.execute(select(Candidate.id, Candidate.label).where(Candidate.id.in_(layout))).all())
    return [labels[c] for c in layout]


def answer_all(db, pid, pick=lambda trial, labels: 0):
    """Submit every trial of a participant; `pick` chooses a position from the trial's labels."""
    while (prog := part.progress(db, pid)).trial is not None:
        trial = prog.trial
        pos = pick(trial, trial_labels(db, trial.trial_id))
        if not trial.shown:
            part.mark_shown(db, trial.trial_id)
        part.submit(db, pid, trial.trial_id, {q: pos for q in part.questions_for(trial.is_catch)})
    return prog


def age(db: StudyDB, minutes: float, public_id: str | None = None) -> None:
    """Move consent and last activity into the past (one participant's, or everyone's), as if they had been quiet
    that long; through the database's own writer queue, so running participants cannot starve it."""
    shift = f"-{minutes} minutes"
    with db.write_conn() as conn:
        conn.exec_driver_sql("UPDATE participants SET consented_at = datetime(consented_at, ?), "
                             "last_seen_at = datetime(last_seen_at, ?) WHERE ? IS NULL OR public_id = ?",
                             (shift, shift, public_id, public_id))
