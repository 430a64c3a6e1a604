"""Joining a study: one participation per person, a balanced slot, status, cap, per-address limit, earlier studies."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session

from study_app.db import StudyDB
from study_app.models import Candidate, Item, Participant, PriorParticipant, Study, Trial, Withdrawal, utcnow
from study_app.randomization import participant_plan
from study_app.settings import CATCH_LABEL

# URL parameters we store: letters, digits, '_' and '-' only, nothing that could be markup.
ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# What a newcomer reads when they cannot join; one neutral sentence each, nothing about the study's internals.
NOT_OPEN = "This study is not taking new participants at the moment. Thank you for your interest."
FULL = "This study already has all the participants it needs. Thank you for your interest."
OVER_LIMIT = ("This study cannot take more participants from your connection at the moment. Thank you for your "
              "interest.")
TOOK_PART = ("Our records show that you took part in an earlier study of this series, so you cannot take part "
             "in this one. Thank you for your interest.")
# The per-address limit counts enrolments over this window; an address's hash is erased once out of it.
LIMIT_WINDOW = timedelta(hours=1)


class NotEnrolling(Exception):
    """The study takes no newcomer now (paused, closed, full, ...); the message is the participant's sentence."""


def valid_id(value: str | None) -> bool:
    """True for an identifier safe to store and use: 1-64 letters, digits, '_' or '-'."""
    return value is not None and bool(ID_RE.fullmatch(value))


def new_public_id() -> str:
    """A participant id for people who arrive without one."""
    return secrets.token_urlsafe(12)


def slot_timeout(study: Study) -> timedelta:
    """How long an unfinished participant may be quiet before their slot goes back to the pool."""
    return timedelta(minutes=float(study.options.slot_timeout_minutes))


def start_window(study: Study) -> timedelta:
    """How long a participant who has answered nothing yet holds a place (never longer than the slot timeout)."""
    return min(timedelta(minutes=float(study.options.start_window_minutes)), slot_timeout(study))


def address_key(study: Study, address: str | None) -> str | None:
    """A keyed hash of the client's address, so the limit needs no stored address; None when unknown."""
    if not address:
        return None
    return hashlib.sha256(f"{study.seed}\x1f{study.name}\x1f{address}".encode()).hexdigest()[:16]


def held_slots(s: Session, study: Study, now: datetime, excluding: int | None = None) -> set[int]:
    """Slots that count towards balance and the cap: finished; or started and active within the slot timeout;
    or not started and active within the start window. Excluded participants hold nothing."""
    seen = func.coalesce(Participant.last_seen_at, Participant.consented_at)
    started = exists().where(Trial.participant_id == Participant.id, Trial.answered_at.isnot(None))
    query = select(Participant.slot).where(
        Participant.study_id == study.id, Participant.slot.isnot(None), Participant.excluded.is_(False),
        or_(Participant.finished_at.isnot(None),
            and_(started, seen >= now - slot_timeout(study)),
            and_(~started, seen >= now - start_window(study))))
    if excluding is not None:
        query = query.where(Participant.id != excluding)
    return set(s.scalars(query))


def took_part_before(s: Session, study: Study, platform_pid: str | None) -> bool:
    """True for a Prolific id on the study's list of earlier participants or enrolled in a study it names."""
    if not platform_pid:
        return False
    if s.scalar(select(PriorParticipant.id).where(PriorParticipant.study_id == study.id,
                                                  PriorParticipant.platform_pid == platform_pid)) is not None:
        return True
    earlier = tuple(study.options.exclude_participants_of)
    return bool(earlier) and s.scalar(
        select(Participant.id).join(Study, Study.id == Participant.study_id)
        .where(Study.name.in_(earlier), Participant.platform_pid == platform_pid).limit(1)) is not None


def refusal(s: Session, study: Study, now: datetime, platform_pid: str | None = None,
            address_hash: str | None = None) -> str | None:
    """Why a newcomer cannot join now, or None if they can."""
    if study.status != "open":
        return NOT_OPEN
    if took_part_before(s, study, platform_pid):
        return TOOK_PART
    per_hour = study.options.enrolments_per_address_per_hour
    if per_hour and address_hash and s.scalar(select(func.count()).where(
            Participant.study_id == study.id, Participant.address_hash == address_hash,
            Participant.consented_at >= now - LIMIT_WINDOW)) >= per_hour:
        return OVER_LIMIT
    cap = study.options.max_participants
    if cap is not None and len(held_slots(s, study, now)) >= cap:
        return FULL
    return None


def admission(db: StudyDB, study_id: int, platform_pid: str | None = None, address: str | None = None) -> str | None:
    """The newcomer's refusal sentence (read-only, for the consent screen), or None if they may join."""
    with db.read() as s:
        study = s.get(Study, study_id)
        if study is None:
            return NOT_OPEN
        return refusal(s, study, utcnow(), platform_pid, address_key(study, address))


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
           platform_study_id: str | None = None, platform_session_id: str | None = None,
           address: str | None = None) -> int:
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
        key = address_key(study, address)
        why = refusal(s, study, now, platform_pid, key)
        if why is not None:
            raise NotEnrolling(why)
        # The limit looks back one window; older hashes have no use left and are erased.
        s.execute(update(Participant).where(Participant.study_id == study_id, Participant.address_hash.isnot(None),
                                            Participant.consented_at < now - LIMIT_WINDOW).values(address_hash=None))
        held = held_slots(s, study, now)
        slot = next(k for k in range(len(held) + 1) if k not in held)  # the lowest free: no holes among completers
        # Indices are never reused, not even a withdrawn participant's.
        used = (s.scalar(select(func.max(Participant.index)).where(Participant.study_id == study_id)),
                s.scalar(select(func.max(Withdrawal.participant_index)).where(Withdrawal.study_id == study_id)))
        index = max((u + 1 for u in used if u is not None), default=0)
        participant = Participant(study_id=study_id, public_id=public_id, index=index, slot=slot,
                                  platform_pid=platform_pid, platform_study_id=platform_study_id,
                                  platform_session_id=platform_session_id, consented_at=now, last_seen_at=now,
                                  address_hash=key if study.options.enrolments_per_address_per_hour else None)
        s.add(participant)
        s.flush()
        _add_trials(s, study, participant.id, slot)
        return participant.id


def keep_place(db: StudyDB, participant_id: int) -> str | None:
    """A participant who has answered nothing, and whose slot went to a newcomer while they were away, moves to
    a free slot with that slot's plan (nothing of theirs is lost: they have no answers); the sentence if none is
    free. Started participants keep their plan whatever happens."""
    now = utcnow()
    with db.read() as s:
        if not _lost_place(s, participant_id, now):
            return None
    with db.write() as s:
        study = _lost_place(s, participant_id, now)
        if not study:
            return None
        cap = study.options.max_participants
        held = held_slots(s, study, now, excluding=participant_id)
        if cap is not None and len(held) >= cap:
            return FULL
        slot = next(k for k in range(len(held) + 1) if k not in held)
        s.execute(delete(Trial).where(Trial.participant_id == participant_id))
        s.execute(update(Participant).where(Participant.id == participant_id).values(slot=slot, last_seen_at=now))
        _add_trials(s, study, participant_id, slot)
        return None


def _lost_place(s: Session, participant_id: int, now: datetime) -> Study | None:
    """The study, when the participant has answered nothing and another participant now holds their slot."""
    person = s.get(Participant, participant_id)
    if person is None or person.slot is None or person.finished_at is not None:
        return None
    if s.scalar(select(Trial.id).where(Trial.participant_id == participant_id, Trial.answered_at.isnot(None))
                .limit(1)) is not None:
        return None
    study = s.get(Study, person.study_id)
    return study if person.slot in held_slots(s, study, now, excluding=participant_id) else None


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
