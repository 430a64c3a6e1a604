"""SQLite storage of studies, participants, trials and votes: SQLAlchemy 2 typed models, engines, the votes_long view."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    String,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker

import vote_format
from study_app.fifo_lock import FifoLock
from study_app.settings import CATCH_LABEL, QUESTIONS, default_db_path
from study_app.spec import StudyOptions

BUSY_TIMEOUT_MS = 30_000


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


# The long vote format of vote_format/, in its column order; test_vote_format checks the two agree.
VOTES_LONG_COLUMNS = vote_format.COLUMNS
_ISO = "'%Y-%m-%dT%H:%M:%fZ'"
VOTES_LONG_SQL = f"""
CREATE VIEW {vote_format.VOTES_VIEW} AS
SELECT p.public_id AS participant_id,
       s.name AS study_id,
       i.key AS item_id,
       i.face_id AS face_id,
       i.expression AS expression,
       i.item_group AS item_group,
       v.question AS question,
       c.label AS method,
       v.position AS position,
       CAST(t.is_catch AS INTEGER) AS is_catch,
       CASE WHEN t.is_catch THEN CAST(c.matches_input AS INTEGER) ELSE NULL END AS catch_passed,
       v.response_ms AS response_ms,
       strftime({_ISO}, t.shown_at) AS shown_at,
       strftime({_ISO}, v.answered_at) AS answered_at,
       CAST(p.excluded AS INTEGER) AS excluded,
       COALESCE(json_extract(s.options, '$.exclude_after_failed_checks'), {vote_format.DEFAULT_MAX_FAILED_CATCH})
           AS exclude_after_failed_checks
FROM votes v
JOIN trials t ON t.id = v.trial_id
JOIN participants p ON p.id = v.participant_id
JOIN studies s ON s.id = p.study_id
JOIN items i ON i.id = t.item_id
JOIN candidates c ON c.id = v.candidate_id
ORDER BY v.id
"""


# The methods each study compares, one row per (study, method), so readers need not parse JSON.
METHODS_VIEW_SQL = f"""
CREATE VIEW {vote_format.METHODS_VIEW} AS
SELECT s.name AS study_id, j.value AS method FROM studies s, json_each(s.methods) j ORDER BY s.id, j.key
"""


# Columns added after the first release: (table, column, DDL, backfill), applied to older databases.
_LATER_COLUMNS = (
    ("candidates", "matches_input", "BOOLEAN NOT NULL DEFAULT 0",
     f"UPDATE candidates SET matches_input = 1 WHERE label = '{CATCH_LABEL}'"),
    ("studies", "status", "VARCHAR(8) NOT NULL DEFAULT 'open'", None),
    ("participants", "slot", "INTEGER", 'UPDATE participants SET slot = "index"'),
    ("participants", "last_seen_at", "DATETIME", None),
)


def _add_missing_columns(conn: Connection) -> None:
    """Bring a database made by an earlier version up to date (create_all never alters a table)."""
    for table, column, ddl, backfill in _LATER_COLUMNS:
        if column not in {row[1] for row in conn.exec_driver_sql(f"PRAGMA table_info({table})")}:
            conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}")
            if backfill:
                conn.exec_driver_sql(backfill)


def _configure_sqlite(engine: Engine, begin_sql: str) -> None:
    """Set the pragmas on every new connection and let us, not pysqlite, emit BEGIN."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:  # noqa: ANN001
        # pysqlite's own implicit BEGIN is deferred and skips SELECTs; turn it off and emit ours below.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        # NORMAL in WAL mode: a killed process loses no committed transaction (only a power cut could).
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:  # noqa: ANN001
        conn.exec_driver_sql(begin_sql)


class StudyDB:
    """A database file with a reader and a writer engine; thread-safe, shared by every Streamlit session."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{self.path}"
        kw = dict(connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
                  pool_size=8, max_overflow=64, pool_timeout=60)
        # Writers take the write lock at BEGIN (IMMEDIATE), so a read-then-write transaction never fails
        # with SQLITE_BUSY on lock upgrade; busy_timeout then queues writers instead of erroring.
        self.write_engine = create_engine(url, **kw)
        self.read_engine = create_engine(url, **kw)
        _configure_sqlite(self.write_engine, "BEGIN IMMEDIATE")
        _configure_sqlite(self.read_engine, "BEGIN")
        self._writer = sessionmaker(self.write_engine, expire_on_commit=False)
        self._reader = sessionmaker(self.read_engine, expire_on_commit=False)
        # SQLite admits one writer at a time; queueing this process's writers on a mutex hands the lock over
        # at once and in arrival order, where SQLite's busy handler polls with growing sleeps (seconds at the tail).
        self._write_lock = FifoLock()
        self.create_schema()

    def create_schema(self) -> None:
        """Create the tables and (re)create the votes_long view, atomically under the write lock."""
        with self._write_lock, self.write_engine.begin() as conn:
            Base.metadata.create_all(conn)
            _add_missing_columns(conn)
            for view, sql in ((vote_format.VOTES_VIEW, VOTES_LONG_SQL), (vote_format.METHODS_VIEW, METHODS_VIEW_SQL)):
                conn.exec_driver_sql(f"DROP VIEW IF EXISTS {view}")
                conn.exec_driver_sql(sql)

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session in one write transaction, committed on exit (rolled back on error)."""
        with self._write_lock, self._writer.begin() as session:
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session over one consistent read snapshot."""
        with self._reader() as session, session.begin():
            yield session

    @contextmanager
    def write_conn(self) -> Iterator[Connection]:
        """A Core connection in one write transaction: the hot paths (submit, shown stamps) skip the ORM."""
        with self._write_lock, self.write_engine.begin() as conn:
            yield conn

    @contextmanager
    def read_conn(self) -> Iterator[Connection]:
        """A Core connection over one consistent read snapshot."""
        with self.read_engine.begin() as conn:
            yield conn

    def dispose(self) -> None:
        """Close every pooled connection (tests, shutdown)."""
        self.write_engine.dispose()
        self.read_engine.dispose()


_open: dict[Path, StudyDB] = {}
_open_lock = threading.Lock()


def open_db(path: str | Path | None = None) -> StudyDB:
    """The process-wide StudyDB for a path (one set of engines per file)."""
    resolved = (Path(path) if path is not None else default_db_path()).resolve()
    with _open_lock:
        if resolved not in _open:
            _open[resolved] = StudyDB(resolved)
        return _open[resolved]
