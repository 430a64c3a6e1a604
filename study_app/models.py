"""The study schema as SQLAlchemy 2 typed models: studies, their texts, participants, trials, votes, withdrawals."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, DateTime, ForeignKey, Index, String, Text, TypeDecorator, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from study_app.settings import QUESTIONS
from study_app.spec import StudyOptions


def utcnow() -> datetime:
    """Naive UTC now; SQLite has no time zones, every stored time is UTC by convention."""
    return datetime.now(UTC).replace(tzinfo=None)


class OptionsJSON(TypeDecorator):
    """StudyOptions stored as a JSON object."""

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value: StudyOptions | None, dialect) -> dict | None:  # noqa: ANN001
        return None if value is None else value.to_json()

    def process_result_value(self, value: dict | None, dialect) -> StudyOptions | None:  # noqa: ANN001
        return None if value is None else StudyOptions.from_json(value)


class Base(DeclarativeBase):
    """Declarative base of the study schema."""

    type_annotation_map = {dict[str, Any]: JSON, list[int]: JSON, list[str]: JSON, StudyOptions: OptionsJSON}


class Study(Base):
    """One built study: its seed, its image folder (relative to the database's folder), its options and status."""

    __tablename__ = "studies"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    seed: Mapped[int]
    image_dir: Mapped[str]
    methods: Mapped[list[str]]  # the compared method names, sorted (a JSON list)
    options: Mapped[StudyOptions]
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # open: enrolling; paused / closed: no new participants (those already in may finish). Set from the admin page.
    status: Mapped[str] = mapped_column(String(8), default="open", server_default="open")

    items: Mapped[list[Item]] = relationship(back_populates="study", cascade="all, delete-orphan")
    texts: Mapped[list[StudyText]] = relationship(cascade="all, delete-orphan")


class Item(Base):
    """One (input face, target expression) pair shown to participants."""

    __tablename__ = "items"
    __table_args__ = (UniqueConstraint("study_id", "key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))  # "<face_id>:<expression>", the item_id of the long format
    face_id: Mapped[str] = mapped_column(String(128))
    expression: Mapped[str] = mapped_column(String(16))
    item_group: Mapped[str] = mapped_column(String(64), default="")
    input_token: Mapped[str] = mapped_column(String(64))

    study: Mapped[Study] = relationship(back_populates="items")
    candidates: Mapped[list[Candidate]] = relationship(back_populates="item")


class Candidate(Base):
    """One image that can be chosen: a method's output for an item, or the unaltered input copy of a catch trial."""

    __tablename__ = "candidates"
    __table_args__ = (UniqueConstraint("study_id", "token"), Index("ix_candidates_face", "study_id", "face_id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))  # None: catch copy
    face_id: Mapped[str] = mapped_column(String(128))
    label: Mapped[str] = mapped_column(String(64))  # method name, or CATCH_LABEL
    token: Mapped[str] = mapped_column(String(64))  # random file name under <image_dir>/images/
    # Same pixels as the input (the catch copy, or a method that returned its input): a right catch answer.
    matches_input: Mapped[bool] = mapped_column(default=False, server_default="0")

    item: Mapped[Item | None] = relationship(back_populates="candidates")


class Participant(Base):
    """One participation: identity from the URL, the enrolment index and the slot that drives the randomization."""

    __tablename__ = "participants"
    __table_args__ = (
        UniqueConstraint("study_id", "public_id"),
        UniqueConstraint("study_id", "index"),
        # One participation per platform id; SQLite treats NULLs as distinct, so anonymous runs are unaffected.
        UniqueConstraint("study_id", "platform_pid"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    public_id: Mapped[str] = mapped_column(String(64))
    index: Mapped[int]  # enrolment order, never reused
    # Place in the balanced sequence that drives the randomization; a drop-out's or an excluded participant's
    # slot is handed to the next newcomer, so completed participants fill the sequence without holes.
    slot: Mapped[int | None]
    platform_pid: Mapped[str | None] = mapped_column(String(64))
    platform_study_id: Mapped[str | None] = mapped_column(String(64))
    platform_session_id: Mapped[str | None] = mapped_column(String(64))
    consented_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    instructions_done_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime)  # last consent, render or answer
    catch_failures: Mapped[int] = mapped_column(default=0)
    excluded: Mapped[bool] = mapped_column(default=False)
    # A keyed hash of the client's address, for the per-address limit; erased once out of the limit's hour.
    address_hash: Mapped[str | None] = mapped_column(String(16))

    trials: Mapped[list[Trial]] = relationship(back_populates="participant", order_by="Trial.ordinal")


class Trial(Base):
    """One screen of one participant: the item, and the candidate ids in screen order (the stored layout)."""

    __tablename__ = "trials"
    __table_args__ = (UniqueConstraint("participant_id", "ordinal"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id", ondelete="CASCADE"))
    ordinal: Mapped[int]
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    is_catch: Mapped[bool] = mapped_column(default=False)
    layout: Mapped[list[int]]
    shown_at: Mapped[datetime | None] = mapped_column(DateTime)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime)

    participant: Mapped[Participant] = relationship(back_populates="trials")
    item: Mapped[Item] = relationship()


class Vote(Base):
    """One answer to one question of one trial; the unique key makes a repeated submit a no-op."""

    __tablename__ = "votes"
    __table_args__ = (
        UniqueConstraint("participant_id", "trial_id", "question", name="uq_vote_once"),
        CheckConstraint("question IN (%s)" % ", ".join(f"'{q}'" for q in QUESTIONS), name="ck_vote_question"),
        CheckConstraint("position >= 0", name="ck_vote_position"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id", ondelete="CASCADE"))
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"))
    question: Mapped[str] = mapped_column(String(16))
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"))
    position: Mapped[int]
    response_ms: Mapped[int]
    answered_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class StudyText(Base):
    """A text participants read (consent, debrief), stored with the study and its sha256, never edited after."""

    __tablename__ = "study_texts"
    __table_args__ = (UniqueConstraint("study_id", "kind"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # consent | debrief
    markdown: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))


class PriorParticipant(Base):
    """A Prolific id from an earlier study or batch (a PID list file): turned away at the door."""

    __tablename__ = "prior_participants"
    __table_args__ = (UniqueConstraint("study_id", "platform_pid"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    platform_pid: Mapped[str] = mapped_column(String(64))


class Withdrawal(Base):
    """A participant's data deleted on request: what was deleted and what became of the slot, never who."""

    __tablename__ = "withdrawals"
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Kept so that enrolment indices are never reused; an ordinal, not an identity.
    participant_index: Mapped[int]
    finished: Mapped[bool]
    votes_deleted: Mapped[int]
    slot_freed: Mapped[bool]  # False: another participant holds the same slot, or the participant held none
