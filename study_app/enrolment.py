"""Joining a study: one participation per person, a balanced slot, the study's status and participant cap."""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from study_app.db import Candidate, Item, Participant, Study, StudyDB, Trial, utcnow
from study_app.randomization import participant_plan
from study_app.settings import CATCH_LABEL

# URL parameters we store: letters, digits, '_' and '-' only, nothing that could be markup.
ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# What a newcomer reads when they cannot join; one neutral sentence each, nothing about the study's internals.
NOT_OPEN = "This study is not taking new participants at the moment. Thank you for your interest."
FULL = "This study already has all the participants it needs. Thank you for your interest."


class NotEnrolling(Exception):
    """The study takes no newcomer now (paused, closed or full); the message is the participant's sentence."""


def valid_id(value: str | None) -> bool:
    """True for an identifier safe to store and use: 1-64 letters, digits, '_' or '-'."""
    return value is not None and bool(ID_RE.fullmatch(value))


def new_public_id() -> str:
    """A participant id for people who arrive without one."""
    return secrets.token_urlsafe(12)


def slot_timeout(study: Study) -> timedelta:
    """How long an unfinished participant may be quiet before their slot goes back to the pool."""
    return timedelta(minutes=float(study.options.slot_timeout_minutes))


def held_slots(s: Session, study: Study, now: datetime) -> set[int]:
    """Slots that count towards balance and the cap: finished or recently active, and not excluded."""
    quiet_since = now - slot_timeout(study)
    return set(s.scalars(select(Participant.slot).where(
        Participant.study_id == study.id, Participant.slot.isnot(None), Participant.excluded.is_(False),
        or_(Participant.finished_at.isnot(None),
            func.coalesce(Participant.last_seen_at, Participant.consented_at) >= quiet_since))))


def refusal(s: Session, study: Study, now: datetime) -> str | None:
    """Why a newcomer cannot join now, or None if they can."""
    if study.status != "open":
        return NOT_OPEN
    cap = study.options.max_participants
    if cap is not None and len(held_slots(s, study, now)) >= cap:
        return FULL
    return None


def admission(db: StudyDB, study_id: int) -> str | None:
    """The newcomer's refusal sentence (read-only, for the consent screen), or None if they may join."""
    with db.read() as s:
        study = s.get(Study, study_id)
        return NOT_OPEN if study is None else refusal(s, study, utcnow())


def find_participant(db: StudyDB, study_id: int, public_id: str | None = None,
                     platform_pid: str | None = None) -> int | None:
    """Participant row id by platform id (one participation per platform id) or by public id."""
    with db.read() as s:
        return _existing(s, study_id, public_id, platform_pid)


def _existing(s: Session, study_id: int, public_id: str | None, platform_pid: str | None) -> int | None:
    if platform_pid:
        return s.scalar(select(Participant.id).where(Participant.study_id == study_id,
                                                     Participant.platform_pid == platform_pid))
    if public_id:
        return s.scalar(select(Participant.id).where(Participant.study_id == study_id,
                                                     Participant.public_id == public_id))
    return None


def enroll(db: StudyDB, study_id: int, public_id: str, platform_pid: str | None = None,
           platform_study_id: str | None = None, platform_session_id: str | None = None) -> int:
    """Create the participant and their plan in one transaction, or return the existing one; NotEnrolling if shut."""
    for value in (public_id, platform_pid, platform_study_id, platform_session_id):
        if value is not None and not valid_id(value):
            raise ValueError("identifiers must be 1-64 letters, digits, '_' or '-'")
    with db.write() as s:
        # BEGIN IMMEDIATE holds the write lock: the lookup, the slot and the cap cannot race another enroll.
        existing = _existing(s, study_id, public_id, platform_pid)
        if existing is not None:
            return existing
        study = s.get(Study, study_id)
        if study is None:
            raise LookupError(f"no study with id {study_id}")
        now = utcnow()
        why = refusal(s, study, now)
        if why is not None:
            raise NotEnrolling(why)
        held = held_slots(s, study, now)
        slot = next(k for k in range(len(held) + 1) if k not in held)  # the lowest free: no holes among completers
        index = s.scalar(select(func.coalesce(func.max(Participant.index) + 1, 0))
                         .where(Participant.study_id == study_id))
        participant = Participant(study_id=study_id, public_id=public_id, index=index, slot=slot,
                                  platform_pid=platform_pid, platform_study_id=platform_study_id,
                                  platform_session_id=platform_session_id, consented_at=now, last_seen_at=now)
        s.add(participant)
        s.flush()
        _add_trials(s, study, participant.id, slot)
        return participant.id


def _add_trials(s: Session, study: Study, participant_id: int, slot: int) -> None:
    """Write the slot's randomized plan as trial rows: what is shown is stored, never recomputed."""
    items = {it.key: it for it in s.scalars(select(Item).where(Item.study_id == study.id))}
    by_label: dict[tuple[int, str], int] = {}
    for cand in s.scalars(select(Candidate).where(Candidate.study_id == study.id)):
        by_label[(cand.item_id or 0, cand.label if cand.item_id else f"{CATCH_LABEL}:{cand.face_id}")] = cand.id
    plan = participant_plan(study.seed, slot, sorted(items), study.methods,
                            study.options.trials_per_participant, study.options.catch_trials)
    for ordinal, planned in enumerate(plan):
        item = items[planned.item_key]
        layout = [by_label[(0, f"{CATCH_LABEL}:{item.face_id}")] if label == CATCH_LABEL
                  else by_label[(item.id, label)] for label in planned.labels]
        s.add(Trial(participant_id=participant_id, ordinal=ordinal, item_id=item.id, is_catch=planned.is_catch,
                    layout=layout))
