"""A participant's way through a study, as database operations the pages call: enroll, show, submit, finish."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from study_app.db import Candidate, Item, Participant, Study, StudyDB, Trial, Vote, utcnow
from study_app.randomization import participant_plan
from study_app.settings import CATCH_LABEL, CATCH_QUESTIONS, PROLIFIC_COMPLETE_URL, QUESTIONS

# URL parameters we accept: Prolific ids are 24 hex characters; allow a little more, nothing that could be markup.
ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def valid_id(value: str | None) -> bool:
    """True for an identifier safe to store and use: 1-64 letters, digits, '_' or '-'."""
    return value is not None and bool(ID_RE.fullmatch(value))


def new_public_id() -> str:
    """A participant id for people who arrive without one."""
    return secrets.token_urlsafe(12)


@dataclass(frozen=True)
class StudyView:
    """What the participant page needs to know about the study."""

    id: int
    name: str
    image_dir: Path
    n_methods: int
    options: dict[str, Any]


@dataclass(frozen=True)
class TrialView:
    """One screen to show: image paths in screen order, never the method labels."""

    trial_id: int
    ordinal: int
    total: int
    expression: str
    is_catch: bool
    input_path: Path
    candidate_paths: tuple[Path, ...]
    shown: bool  # already stamped as displayed (by the previous submit, or an earlier render)


@dataclass(frozen=True)
class Progress:
    """Where a participant stands; `trial` is None once every trial is answered."""

    participant_id: int
    public_id: str
    instructions_done: bool
    answered: int
    total: int
    trial: TrialView | None
    finished: bool
    excluded: bool


@dataclass(frozen=True)
class SubmitResult:
    """Outcome of a submit: stored now, or already stored earlier (a double click or rerun)."""

    stored: bool
    finished: bool


def load_study(db: StudyDB, study_id: int) -> StudyView:
    """The study's participant-facing settings."""
    with db.read() as s:
        study = s.get(Study, study_id)
        if study is None:
            raise LookupError(f"no study with id {study_id}")
        return StudyView(study.id, study.name, Path(study.image_dir), len(study.methods),
                         dict(study.options))


def find_participant(db: StudyDB, study_id: int, public_id: str | None = None,
                     platform_pid: str | None = None) -> int | None:
    """Participant row id by platform id (preferred: one participation per platform id) or by public id."""
    with db.read() as s:
        if platform_pid:
            return s.scalar(select(Participant.id).where(Participant.study_id == study_id,
                                                         Participant.platform_pid == platform_pid))
        if public_id:
            return s.scalar(select(Participant.id).where(Participant.study_id == study_id,
                                                         Participant.public_id == public_id))
    return None


def enroll(db: StudyDB, study_id: int, public_id: str, platform_pid: str | None = None,
           platform_study_id: str | None = None, platform_session_id: str | None = None) -> int:
    """Create the participant and all their trials in one transaction, or return the existing participation."""
    for value in (public_id, platform_pid, platform_study_id, platform_session_id):
        if value is not None and not valid_id(value):
            raise ValueError("identifiers must be 1-64 letters, digits, '_' or '-'")
    with db.write() as s:
        # BEGIN IMMEDIATE holds the write lock, so the lookup and the next index cannot race another enroll.
        existing = _existing(s, study_id, public_id, platform_pid)
        if existing is not None:
            return existing
        study = s.get(Study, study_id)
        if study is None:
            raise LookupError(f"no study with id {study_id}")
        index = s.scalar(select(func.coalesce(func.max(Participant.index) + 1, 0))
                         .where(Participant.study_id == study_id))
        items = {it.key: it for it in s.scalars(select(Item).where(Item.study_id == study_id))}
        by_label: dict[tuple[int, str], int] = {}
        for cand in s.scalars(select(Candidate).where(Candidate.study_id == study_id)):
            by_label[(cand.item_id or 0, cand.label if cand.item_id else f"{CATCH_LABEL}:{cand.face_id}")] = cand.id
        plan = participant_plan(study.seed, index, sorted(items), study.methods,
                                study.options.get("trials_per_participant"), study.options.get("catch_trials", 0))
        participant = Participant(study_id=study_id, public_id=public_id, index=index, platform_pid=platform_pid,
                                  platform_study_id=platform_study_id, platform_session_id=platform_session_id)
        s.add(participant)
        s.flush()
        for ordinal, planned in enumerate(plan):
            item = items[planned.item_key]
            layout = [by_label[(0, f"{CATCH_LABEL}:{item.face_id}")] if label == CATCH_LABEL
                      else by_label[(item.id, label)] for label in planned.labels]
            s.add(Trial(participant_id=participant.id, ordinal=ordinal, item_id=item.id,
                        is_catch=planned.is_catch, layout=layout))
        return participant.id


def _existing(s: Session, study_id: int, public_id: str, platform_pid: str | None) -> int | None:
    if platform_pid:
        return s.scalar(select(Participant.id).where(Participant.study_id == study_id,
                                                     Participant.platform_pid == platform_pid))
    return s.scalar(select(Participant.id).where(Participant.study_id == study_id,
                                                 Participant.public_id == public_id))


def finish_instructions(db: StudyDB, participant_id: int) -> None:
    """Record that the instructions were read, so a refresh goes straight to the trials."""
    with db.write() as s:
        s.execute(update(Participant).where(Participant.id == participant_id,
                                            Participant.instructions_done_at.is_(None))
                  .values(instructions_done_at=utcnow()))


_T = Trial.__table__
_P = Participant.__table__
_VOTE_INSERT = sqlite_insert(Vote.__table__).on_conflict_do_nothing(
    index_elements=["participant_id", "trial_id", "question"])


def progress(db: StudyDB, participant_id: int) -> Progress:
    """The participant's state read from the database: the first unanswered trial is the current one."""
    with db.read_conn() as conn:
        head = conn.execute(
            select(_P.c.public_id, _P.c.instructions_done_at, _P.c.finished_at, _P.c.excluded, Study.image_dir,
                   select(func.count()).where(_T.c.participant_id == participant_id).scalar_subquery(),
                   select(func.count()).where(_T.c.participant_id == participant_id,
                                              _T.c.answered_at.isnot(None)).scalar_subquery())
            .join(Study.__table__, Study.id == _P.c.study_id).where(_P.c.id == participant_id)).one_or_none()
        if head is None:
            raise LookupError(f"no participant {participant_id}")
        public_id, instructions_at, finished_at, excluded, image_dir, total, answered = head
        current = conn.execute(
            select(_T.c.id, _T.c.ordinal, _T.c.is_catch, _T.c.layout, Item.expression, Item.input_token,
                   _T.c.shown_at)
            .join(Item.__table__, Item.id == _T.c.item_id)
            .where(_T.c.participant_id == participant_id, _T.c.answered_at.is_(None))
            .order_by(_T.c.ordinal).limit(1)).one_or_none()
        view = None
        if current is not None:
            trial_id, ordinal, is_catch, layout, expression, input_token, shown_at = current
            images_dir = Path(image_dir) / "images"
            tokens = dict(conn.execute(select(Candidate.id, Candidate.token).where(Candidate.id.in_(layout))).all())
            view = TrialView(trial_id, ordinal, total, expression, bool(is_catch), images_dir / input_token,
                             tuple(images_dir / tokens[c] for c in layout), shown_at is not None)
    return Progress(participant_id, public_id, instructions_at is not None, answered, total, view,
                    finished_at is not None, bool(excluded))


def mark_shown(db: StudyDB, trial_id: int) -> None:
    """Stamp the first time a trial was put on screen; response times are measured from it."""
    with db.write_conn() as conn:
        conn.execute(update(_T).where(_T.c.id == trial_id, _T.c.shown_at.is_(None)).values(shown_at=utcnow()))


def submit(db: StudyDB, participant_id: int, trial_id: int, answers: dict[str, int]) -> SubmitResult:
    """Store the answers (screen positions) of one trial in one transaction; repeating it is a no-op."""
    with db.write_conn() as conn:
        row = conn.execute(select(_T.c.participant_id, _T.c.answered_at, _T.c.shown_at, _T.c.layout, _T.c.is_catch)
                           .where(_T.c.id == trial_id)).one_or_none()
        if row is None or row.participant_id != participant_id:
            raise LookupError("this trial does not belong to this participant")
        if row.answered_at is not None:
            finished = conn.execute(select(_P.c.finished_at).where(_P.c.id == participant_id)).scalar()
            return SubmitResult(stored=False, finished=finished is not None)
        wanted = questions_for(bool(row.is_catch))
        if set(answers) != set(wanted):
            raise ValueError(f"answers must cover exactly {wanted}")
        layout = row.layout
        for q, pos in answers.items():
            if not isinstance(pos, int) or not 0 <= pos < len(layout):
                raise ValueError(f"position {pos!r} out of range for question {q}")
        now = utcnow()
        shown = row.shown_at or now
        response_ms = max(0, int((now - shown).total_seconds() * 1000))
        # The unique key (participant, trial, question) turns a racing duplicate into nothing, never a 2nd row.
        conn.execute(_VOTE_INSERT, [dict(participant_id=participant_id, trial_id=trial_id, question=q,
                                         candidate_id=layout[pos], position=pos, response_ms=response_ms,
                                         answered_at=now) for q, pos in answers.items()])
        conn.execute(update(_T).where(_T.c.id == trial_id).values(answered_at=now, shown_at=shown))
        if row.is_catch:
            right = dict(conn.execute(select(Candidate.id, Candidate.matches_input)
                                      .where(Candidate.id.in_(layout))).all())
            if not all(right[layout[pos]] for pos in answers.values()):
                options = conn.execute(select(Study.options).join(_P, _P.c.study_id == Study.id)
                                       .where(_P.c.id == participant_id)).scalar()
                limit = int(options.get("exclude_after_failed_checks", 2))
                failures = _P.c.catch_failures + 1
                conn.execute(update(_P).where(_P.c.id == participant_id).values(
                    catch_failures=failures, excluded=(failures >= limit) if limit > 0 else False))
        upcoming = conn.execute(select(_T.c.id).where(_T.c.participant_id == participant_id,
                                                      _T.c.answered_at.is_(None)).order_by(_T.c.ordinal)).scalars().all()
        if upcoming:
            # The next screen is drawn right after this commit: stamping it here saves each trial a write.
            conn.execute(update(_T).where(_T.c.id == upcoming[0], _T.c.shown_at.is_(None)).values(shown_at=now))
        else:
            conn.execute(update(_P).where(_P.c.id == participant_id).values(finished_at=now))
        return SubmitResult(stored=True, finished=not upcoming)


def questions_for(is_catch: bool) -> tuple[str, ...]:
    """The questions asked on a trial: all three, or only the instructed one on a catch trial."""
    return CATCH_QUESTIONS if is_catch else QUESTIONS


def completion(study: StudyView, excluded: bool, platform_pid: str | None) -> tuple[str, str | None]:
    """The completion code and, when configured or for Prolific participants, the redirect URL."""
    code = study.options.get("completion_code") or ""
    if excluded and study.options.get("failed_checks_code"):
        code = study.options["failed_checks_code"]
    template = study.options.get("redirect_url") or (PROLIFIC_COMPLETE_URL if platform_pid else None)
    return code, (template.replace("{code}", code) if template else None)


def platform_pid_of(db: StudyDB, participant_id: int) -> str | None:
    """The recruitment platform id stored for a participant."""
    with db.read() as s:
        return s.scalar(select(Participant.platform_pid).where(Participant.id == participant_id))
