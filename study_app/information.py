"""What participants read: consent and debrief texts, the duration estimated from the measured pace, ways out."""

from __future__ import annotations

import hashlib
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from study_app.db import StudyDB
from study_app.models import Participant, Study, StudyText, Trial
from study_app.settings import PROLIFIC_COMPLETE_URL
from study_app.spec import StudyBuildError, StudyOptions

TEXT_KINDS = ("consent", "debrief")
# Finishers needed before their median pace replaces the assumed one.
MIN_FINISHERS_FOR_PACE = 3

DEFAULT_CONSENT = """\
You are invited to take part in a short study about computer-edited photos of faces.

- On each screen you see a photo of a face and several versions of it edited to show an expression.
- You answer three questions per screen by choosing one image each.
- There are {screens} screens; the study takes about {minutes} minutes. We record your choices and how long each
  screen takes; no names, no photos of you.
- Taking part is voluntary; you may stop at any time by closing the page.
"""

RETURN_ON_PROLIFIC = ("Please return your submission on Prolific: in the Prolific tab, click “Cancel "
                      "participation” (or, if you already submitted, “Return and cancel reward” on your "
                      "Submissions page). A returned submission is not a rejection.")
DECLINED = "You chose not to take part. Nothing you did here has been recorded."


def read_text_file(path: Path, kind: str) -> str:
    """A consent or debrief Markdown file as text, or StudyBuildError naming the problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StudyBuildError(f"{kind} file not found: {path}") from None
    except (UnicodeDecodeError, OSError) as err:
        raise StudyBuildError(f"cannot read the {kind} file {path} as UTF-8 text ({err})") from None
    if not text.strip():
        raise StudyBuildError(f"the {kind} file {path} is empty; write the text participants should read")
    return text


def text_record(study_id: int, kind: str, markdown: str) -> StudyText:
    """The row that stores a text with its sha256 (what exactly participants agreed to)."""
    return StudyText(study_id=study_id, kind=kind, markdown=markdown,
                     sha256=hashlib.sha256(markdown.encode()).hexdigest())


def study_texts(db: StudyDB, study_id: int) -> dict[str, StudyText]:
    """The study's stored texts by kind (none for a study built without them)."""
    with db.read() as s:
        return {t.kind: t for t in s.scalars(select(StudyText).where(StudyText.study_id == study_id))}


def fill(markdown: str, minutes: int, screens: int) -> str:
    """The text with its placeholders {minutes} and {screens} filled in (any other brace is left as written)."""
    return markdown.replace("{minutes}", str(minutes)).replace("{screens}", str(screens))


@dataclass(frozen=True)
class Estimate:
    """How long the study takes, and where the pace behind it comes from."""

    screens: int
    seconds_per_screen: float
    minutes: int
    source: str


def screens_per_participant(options: StudyOptions, n_items: int) -> int:
    """Trials a participant answers: their items plus the catch trials."""
    per = options.trials_per_participant
    return (n_items if per is None else min(per, n_items)) + options.catch_trials


def _finisher_paces(s: Session, study_id: int) -> list[float]:
    """Seconds per screen of each finisher, consent to last answer (reading the instructions included)."""
    screens = (select(func.count()).where(Trial.participant_id == Participant.id)
               .correlate(Participant).scalar_subquery())
    rows = s.execute(select(Participant.consented_at, Participant.finished_at, screens).where(
        Participant.study_id == study_id, Participant.finished_at.isnot(None))).all()
    return [(end - start).total_seconds() / n for start, end, n in rows if n]


def estimate(db: StudyDB, study_id: int) -> Estimate:
    """Minutes for one participant: their screens times the median pace of this study's finishers, else of
    its pilot's, else the pace the study assumes."""
    with db.read() as s:
        study = s.get(Study, study_id)
        if study is None:
            raise LookupError(f"no study with id {study_id}")
        screens = screens_per_participant(study.options, len(study.items))
        paces, source = _finisher_paces(s, study.id), study.name
        if len(paces) < MIN_FINISHERS_FOR_PACE:
            for pilot_id, pilot_name, options in s.execute(select(Study.id, Study.name, Study.options)):
                if options.pilot_of == study.name:
                    paces, source = _finisher_paces(s, pilot_id), f"its pilot {pilot_name}"
                    break
        if len(paces) >= MIN_FINISHERS_FOR_PACE:
            pace = statistics.median(paces)
            where = f"measured: median of {len(paces)} finishers of {source}"
        else:
            pace = study.options.seconds_per_screen
            where = (f"assumed ({pace:g} s per screen, the study's seconds_per_screen); run the pilot to "
                     f"measure it")
    return Estimate(screens, pace, max(1, math.ceil(screens * pace / 60)), where)


def way_out(options: StudyOptions, code: str | None) -> tuple[str | None, str | None, str | None]:
    """(instruction, code to show, link back) for someone who leaves without doing the study."""
    if code:
        url = {"prolific": PROLIFIC_COMPLETE_URL, "link": options.redirect_url}.get(options.recruitment)
        return None, code, url.replace("{code}", code) if url else None
    if options.recruitment == "prolific":
        return RETURN_ON_PROLIFIC, None, None
    return None, None, None
