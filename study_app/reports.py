"""Views of a study for the admin page and the export command: progress, participants, long votes, status.

    python -m study_app.reports --out votes.csv [--db PATH] [--study NAME]
    python -m study_app.reports --participants participants.csv --study NAME   # for approving on Prolific
    python -m study_app.reports --duration --study NAME   # the estimate to enter on Prolific, and its pace
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
from sqlalchemy import and_, case, column, func, select, table, update

from study_app.db import VOTES_LONG_COLUMNS, StudyDB, open_db
from study_app.enrolment import held_slots
from study_app.information import estimate
from study_app.models import Item, Participant, Study, Trial, Withdrawal, utcnow
from study_app.participation import completion_code
from vote_format import PARTICIPANT_COLUMNS, PARTICIPANTS_VIEW, VOTES_VIEW

STATUSES = ("open", "paused", "closed")


def studies(db: StudyDB) -> pd.DataFrame:
    """Every study: id, name, methods, options, status, created time, newest first."""
    with db.read() as s:
        rows = s.execute(select(Study.id, Study.name, Study.methods, Study.options, Study.status, Study.created_at)
                         .order_by(Study.id.desc())).all()
    return pd.DataFrame(rows, columns=["id", "name", "methods", "options", "status", "created_at"])


# The views as selectables: they have no ORM class, being the contract's shape rather than the app's.
VOTES_LONG = table(VOTES_VIEW, *(column(c) for c in VOTES_LONG_COLUMNS))
PARTICIPANT_SUMMARY = table(PARTICIPANTS_VIEW, *(column(c) for c in PARTICIPANT_COLUMNS))
# participants.csv: the votes' pseudonymous key first, the Prolific id beside it for approving and rejecting.
PLATFORM_COLUMNS = ("participant_id", "prolific_pid", "session_id", "started_at", "finished_at", "minutes",
                    "finished", "status", "failed_checks", "excluded", "code")


def _frame(db: StudyDB, query) -> pd.DataFrame:
    """A select's rows as a DataFrame with the select's column names."""
    with db.read() as s:
        result = s.execute(query)
        return pd.DataFrame(result.all(), columns=list(result.keys()))


def votes_long(db: StudyDB, study_name: str | None = None) -> pd.DataFrame:
    """The long vote format (the votes_long view), optionally for one study; empty frame keeps the columns."""
    query = select(VOTES_LONG)
    if study_name:
        query = query.where(VOTES_LONG.c.study_id == study_name)
    return _frame(db, query).reindex(columns=list(VOTES_LONG_COLUMNS))


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """CSV with a header, empty cells for missing values (catch_passed of ordinary trials)."""
    return frame.to_csv(index=False).encode()


def participants(db: StudyDB, study_id: int) -> pd.DataFrame:
    """One row per participant: ids, progress, catch failures, exclusion."""
    frame = _frame(db, select(
        Participant.public_id.label("participant_id"), Participant.platform_pid, Participant.platform_session_id,
        Participant.index.label("participant_index"), Participant.slot, Participant.consented_at,
        Participant.finished_at, _count(Trial.answered_at.is_not(None)).label("answered"),
        func.count(Trial.id).label("trials"), Participant.catch_failures, Participant.excluded)
        .outerjoin(Trial, Trial.participant_id == Participant.id)
        .where(Participant.study_id == study_id).group_by(Participant.id).order_by(Participant.index))
    if not frame.empty:
        frame["excluded"] = frame["excluded"].astype(bool)
    return frame


def item_progress(db: StudyDB, study_id: int) -> pd.DataFrame:
    """Per item: answered showings (catch trials apart) and participants still due to see it."""
    answered, ordinary = Trial.answered_at.is_not(None), Trial.is_catch.is_(False)
    return _frame(db, select(
        Item.key.label("item_id"), Item.item_group,
        _count(and_(answered, ordinary)).label("answered"),
        _count(and_(Trial.answered_at.is_(None), ordinary)).label("pending"),
        _count(and_(answered, Trial.is_catch.is_(True))).label("catch_answered"))
        .outerjoin(Trial, Trial.item_id == Item.id)
        .where(Item.study_id == study_id).group_by(Item.id).order_by(Item.key))


def _count(condition):
    """How many joined rows meet the condition (0 where the outer join found none)."""
    return func.sum(case((condition, 1), else_=0))


def method_progress(votes: pd.DataFrame) -> pd.DataFrame:
    """Votes per method and question over ordinary trials, as counts (catch trials apart)."""
    real = votes[votes["is_catch"] == 0]
    if real.empty:
        return pd.DataFrame()
    return real.pivot_table(index="method", columns="question", values="participant_id", aggfunc="count",
                            fill_value=0)


def platform_participants(db: StudyDB, study_id: int) -> pd.DataFrame:
    """One row per participant for approving and rejecting on Prolific: the votes' key and the PID, times,
    finished and status, checks, exclusion, the code they were shown."""
    with db.read() as s:
        study = s.get(Study, study_id)
        if study is None:
            raise LookupError(f"no study with id {study_id}")
        name, options = study.name, study.options
    frame = _frame(db, select(PARTICIPANT_SUMMARY).where(PARTICIPANT_SUMMARY.c.study_id == name))
    if frame.empty:
        return pd.DataFrame(columns=list(PLATFORM_COLUMNS))
    took = pd.to_datetime(frame["finished_at"], utc=True) - pd.to_datetime(frame["started_at"], utc=True)
    frame["minutes"] = (took.dt.total_seconds() / 60).round(1)
    frame["code"] = [completion_code(options, bool(ex)) if done else ""
                     for done, ex in zip(frame["finished"], frame["excluded"])]
    frame = frame.rename(columns={"participant_status": "status"})
    return frame.fillna({"prolific_pid": "", "session_id": "", "finished_at": ""})[list(PLATFORM_COLUMNS)]


def places(db: StudyDB, study_id: int) -> tuple[int, int | None, str]:
    """Places held now (finished or active, not excluded), the cap (None: none) and the status."""
    with db.read() as s:
        study = s.get(Study, study_id)
        if study is None:
            raise LookupError(f"no study with id {study_id}")
        return len(held_slots(s, study, utcnow())), study.options.max_participants, study.status


def withdrawals(db: StudyDB, study_id: int) -> int:
    """How many participants of the study had their data deleted on request."""
    with db.read() as s:
        return s.scalar(select(func.count()).where(Withdrawal.study_id == study_id))


def set_status(db: StudyDB, study_id: int, status: str) -> None:
    """Open, pause or close a study to newcomers; those already in may always finish."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}")
    with db.write() as s:
        s.execute(update(Study).where(Study.id == study_id).values(status=status))


def _write(path: Path, frame: pd.DataFrame, what: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(to_csv_bytes(frame))
    print(f"wrote {len(frame)} {what} to {path}")


def main(argv: list[str] | None = None) -> int:
    """Export the long votes (all studies or one) and one study's participants to CSV."""
    ap = argparse.ArgumentParser(prog="python -m study_app.reports", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", type=Path, help="SQLite file (default: $USGAN_STUDY_DB or <repo>/var/study.sqlite)")
    ap.add_argument("--study", help="only this study (its name); needed for --participants")
    ap.add_argument("--out", type=Path, help="CSV file for the long votes")
    ap.add_argument("--participants", type=Path, help="CSV file for the participants (approve / reject on Prolific)")
    ap.add_argument("--duration", action="store_true",
                    help="print the study's estimated duration and where its pace comes from (needs --study)")
    args = ap.parse_args(argv)
    if args.out is None and args.participants is None and not args.duration:
        ap.error("nothing to do: give --out, --participants and/or --duration")
    if args.db is not None and not args.db.is_file():
        print(f"error: no database at {args.db}", file=sys.stderr)
        return 2
    db = open_db(args.db)
    if args.participants is not None or args.duration:
        known = studies(db)
        ids = dict(zip(known["name"], known["id"]))
        if args.study not in ids:
            print(f"error: --participants and --duration need --study, one of: "
                  f"{', '.join(ids) or '(no study yet)'}", file=sys.stderr)
            return 2
        if args.duration:
            time = estimate(db, int(ids[args.study]))
            print(f"{args.study}: about {time.minutes} minutes ({time.screens} screens at "
                  f"{time.seconds_per_screen:.0f} s per screen; pace {time.source})")
        if args.participants is not None:
            _write(args.participants, platform_participants(db, int(ids[args.study])), "participants")
    if args.out is not None:
        _write(args.out, votes_long(db, args.study), "votes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
