"""A participant's way through a study, as database operations the pages call: progress, show, submit, finish."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from study_app.db import StudyDB
from study_app.models import Candidate, Item, Participant, Study, Trial, Vote, utcnow
from study_app.settings import CATCH_QUESTIONS, PROLIFIC_COMPLETE_URL, QUESTIONS
from study_app.spec import StudyOptions

@dataclass(frozen=True)
class StudyView:
    """What the participant page needs to know about the study."""

    id: int
    name: str
    image_dir: Path
    n_methods: int
    options: StudyOptions
    status: str

    @property
    def recruitment(self) -> str:
        """prolific, link or pilot."""
        return self.options.recruitment


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
    shown: bool  # already stamped as rendered to the participant (response times run from that stamp)


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


def images_root(db: StudyDB, image_dir: str) -> Path:
    """A study's folder: stored relative to the database's folder (absolute in databases built before that)."""
    return db.path.resolve().parent / image_dir  # an absolute image_dir replaces the left side


def load_study(db: StudyDB, study_id: int) -> StudyView:
    """The study's participant-facing settings."""
    with db.read() as s:
        study = s.get(Study, study_id)
        if study is None:
            raise LookupError(f"no study with id {study_id}")
        return StudyView(study.id, study.name, images_root(db, study.image_dir), len(study.methods),
                         study.options, study.status)


def finish_instructions(db: StudyDB, participant_id: int) -> None:
    """Record that the instructions were read, so a refresh goes straight to the trials."""
    with db.write() as s:
        now = utcnow()
        s.execute(update(Participant).where(Participant.id == participant_id,
                                            Participant.instructions_done_at.is_(None))
                  .values(instructions_done_at=now, last_seen_at=now))


# The hot paths (progress, show, submit) run these ORM statements on a plain connection: no session, no
# identity map, the same typed columns.
_VOTE_INSERT = sqlite_insert(Vote).on_conflict_do_nothing(index_elements=["participant_id", "trial_id", "question"])


def progress(db: StudyDB, participant_id: int) -> Progress:
    """The participant's state read from the database: the first unanswered trial is the current one."""
    with db.read_conn() as conn:
        head = conn.execute(
            select(Participant.public_id, Participant.instructions_done_at, Participant.finished_at,
                   Participant.excluded, Study.image_dir,
                   select(func.count()).where(Trial.participant_id == participant_id).scalar_subquery(),
                   select(func.count()).where(Trial.participant_id == participant_id,
                                              Trial.answered_at.isnot(None)).scalar_subquery())
            .join(Study, Study.id == Participant.study_id).where(Participant.id == participant_id)).one_or_none()
        if head is None:
            raise LookupError(f"no participant {participant_id}")
        public_id, instructions_at, finished_at, excluded, image_dir, total, answered = head
        current = conn.execute(
            select(Trial.id, Trial.ordinal, Trial.is_catch, Trial.layout, Item.expression, Item.input_token,
                   Trial.shown_at)
            .join(Item, Item.id == Trial.item_id)
            .where(Trial.participant_id == participant_id, Trial.answered_at.is_(None))
            .order_by(Trial.ordinal).limit(1)).one_or_none()
        view = None
        if current is not None:
            trial_id, ordinal, is_catch, layout, expression, input_token, shown_at = current
            images_dir = images_root(db, image_dir) / "images"
            tokens = dict(conn.execute(select(Candidate.id, Candidate.token).where(Candidate.id.in_(layout))).all())
            view = TrialView(trial_id, ordinal, total, expression, bool(is_catch), images_dir / input_token,
                             tuple(images_dir / tokens[c] for c in layout), shown_at is not None)
    return Progress(participant_id, public_id, instructions_at is not None, answered, total, view,
                    finished_at is not None, bool(excluded))


def mark_shown(db: StudyDB, trial_id: int) -> None:
    """Stamp the first render of a trial (its images sent to the browser); response times run from it."""
    with db.write_conn() as conn:
        now = utcnow()
        stamped = conn.execute(update(Trial).where(Trial.id == trial_id, Trial.shown_at.is_(None))
                               .values(shown_at=now).returning(Trial.participant_id)).scalar()
        if stamped is not None:
            conn.execute(update(Participant).where(Participant.id == stamped).values(last_seen_at=now))


def submit(db: StudyDB, participant_id: int, trial_id: int, answers: dict[str, int]) -> SubmitResult:
    """Store the answers (screen positions) of one trial in one transaction; repeating it is a no-op."""
    with db.write_conn() as conn:
        row = conn.execute(select(Trial.participant_id, Trial.answered_at, Trial.shown_at, Trial.layout, Trial.is_catch)
                           .where(Trial.id == trial_id)).one_or_none()
        if row is None or row.participant_id != participant_id:
            raise LookupError("this trial does not belong to this participant")
        if row.answered_at is not None:
            finished = conn.execute(select(Participant.finished_at).where(Participant.id == participant_id)).scalar()
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
        conn.execute(update(Trial).where(Trial.id == trial_id).values(answered_at=now, shown_at=shown))
        if row.is_catch:
            right = dict(conn.execute(select(Candidate.id, Candidate.matches_input)
                                      .where(Candidate.id.in_(layout))).all())
            if not all(right[layout[pos]] for pos in answers.values()):
                options = conn.execute(select(Study.options).join(Participant, Participant.study_id == Study.id)
                                       .where(Participant.id == participant_id)).scalar()
                limit = options.exclude_after_failed_checks
                failures = Participant.catch_failures + 1
                conn.execute(update(Participant).where(Participant.id == participant_id).values(
                    catch_failures=failures, excluded=(failures >= limit) if limit > 0 else False))
        # The next trial is not stamped here: its clock starts when it is rendered, not when this commit lands.
        upcoming = conn.execute(select(func.count()).where(Trial.participant_id == participant_id,
                                                           Trial.answered_at.is_(None))).scalar()
        seen = {"last_seen_at": now} if upcoming else {"last_seen_at": now, "finished_at": now}
        conn.execute(update(Participant).where(Participant.id == participant_id).values(**seen))
        return SubmitResult(stored=True, finished=not upcoming)


def questions_for(is_catch: bool) -> tuple[str, ...]:
    """The questions asked on a trial: all three, or only the instructed one on a catch trial."""
    return CATCH_QUESTIONS if is_catch else QUESTIONS


def completion_code(options: StudyOptions, excluded: bool) -> str:
    """The code a finished participant gets: the failure code if excluded and one is set, else the study's."""
    if excluded and options.failed_checks_code:
        return options.failed_checks_code
    return options.completion_code


def completion(study: StudyView, excluded: bool) -> tuple[str, str | None]:
    """The code to show and the way back: Prolific's completion link, the study's redirect (link), or none."""
    code = completion_code(study.options, excluded)
    template = {"prolific": PROLIFIC_COMPLETE_URL, "link": study.options.redirect_url}.get(study.recruitment)
    return code, (template.replace("{code}", code) if template else None)
