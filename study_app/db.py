"""SQLite storage: engines and pragmas, the votes_long and participant_summary views, upgrades of older files."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

import vote_format
from study_app.fifo_lock import FifoLock
from study_app.models import Base
from study_app.settings import CATCH_LABEL, default_db_path

BUSY_TIMEOUT_MS = 30_000


# The long vote format of vote_format/, in its column order; test_vote_format checks the two agree.
VOTES_LONG_COLUMNS = vote_format.COLUMNS
_ISO = "'%Y-%m-%dT%H:%M:%fZ'"
# One definition of a participant's status for every export (p: participants, s: studies): finished, or quiet
# for longer than the study's slot timeout (Prolific's maximum time), else in progress.
_STATUS_SQL = """CASE WHEN p.finished_at IS NOT NULL THEN 'finished'
            WHEN (julianday('now') - julianday(COALESCE(p.last_seen_at, p.consented_at))) * 1440.0
                 > COALESCE(json_extract(s.options, '$.slot_timeout_minutes'), 60) THEN 'timed out'
            ELSE 'in progress' END"""
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
           AS exclude_after_failed_checks,
       CAST(p.finished_at IS NOT NULL AS INTEGER) AS finished,
       {_STATUS_SQL} AS participant_status
FROM votes v
JOIN trials t ON t.id = v.trial_id
JOIN participants p ON p.id = v.participant_id
JOIN studies s ON s.id = p.study_id
JOIN items i ON i.id = t.item_id
JOIN candidates c ON c.id = v.candidate_id
ORDER BY v.id
"""


# One row per participant, keyed like the votes; the Prolific id beside it is for joining Prolific's export.
PARTICIPANTS_SQL = f"""
CREATE VIEW {vote_format.PARTICIPANTS_VIEW} AS
SELECT p.public_id AS participant_id,
       s.name AS study_id,
       p.platform_pid AS prolific_pid,
       p.platform_session_id AS session_id,
       strftime({_ISO}, p.consented_at) AS started_at,
       strftime({_ISO}, p.finished_at) AS finished_at,
       CAST(p.finished_at IS NOT NULL AS INTEGER) AS finished,
       {_STATUS_SQL} AS participant_status,
       (SELECT COUNT(*) FROM trials t WHERE t.participant_id = p.id AND t.answered_at IS NOT NULL) AS answered,
       (SELECT COUNT(*) FROM trials t WHERE t.participant_id = p.id) AS trials,
       p.catch_failures AS failed_checks,
       CAST(p.excluded AS INTEGER) AS excluded
FROM participants p
JOIN studies s ON s.id = p.study_id
ORDER BY s.id, p."index"
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
    ("participants", "address_hash", "VARCHAR(16)", None),
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
        # hide_parameters: a failing statement's values (Prolific ids among them) stay out of its message, so
        # out of every log.
        kw = dict(connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
                  pool_size=8, max_overflow=64, pool_timeout=60, hide_parameters=True)
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
            for view, sql in ((vote_format.VOTES_VIEW, VOTES_LONG_SQL), (vote_format.METHODS_VIEW, METHODS_VIEW_SQL),
                              (vote_format.PARTICIPANTS_VIEW, PARTICIPANTS_SQL)):
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
