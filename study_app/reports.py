"""Views of a study for the admin page and the export command: progress, participants, long votes, status.

    python -m study_app.reports --out votes.csv [--db PATH] [--study NAME]
    python -m study_app.reports --participants participants.csv --study NAME   # for approving on Prolific
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
from sqlalchemy import and_, case, column, func, select, table, update

from study_app.db import VOTES_LONG_COLUMNS, Item, Participant, Study, StudyDB, Trial, open_db, utcnow
from study_app.enrolment import held_slots, slot_timeout
from study_app.participation import completion_code
from vote_format import VOTES_VIEW

STATUSES = ("open", "paused", "closed")


def studies(db: StudyDB) -> pd.DataFrame:
    """Every study: id, name, methods, options, status, created time, newest first."""
    with db.read() as s:
        rows = s.execute(select(Study.id, Study.name, Study.methods, Study.options, Study.status, Study.created_at)
                         .order_by(Study.id.desc())).all()
    return pd.DataFrame(rows, columns=["id", "name", "methods", "options", "status", "created_at"])


# The view as a selectable: it has no ORM class, being the contract's shape rather than the app's.
VOTES_LONG = table(VOTES_VIEW, *(column(c) for c in VOTES_LONG_COLUMNS))


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


def _iso(moment) -> str:  # noqa: ANN001
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment is not None else ""


def platform_participants(db: StudyDB, study_id: int) -> pd.DataFrame:
    """One row per participant for approving and rejecting on Prolific: id, times, checks, exclusion, code."""
    now = utcnow()
    with db.read() as s:
        study = s.get(Study, study_id)
        if study is None:
            raise LookupError(f"no study with id {study_id}")
        people = s.scalars(select(Participant).where(Participant.study_id == study_id)
                           .order_by(Participant.index)).all()
    rows = []
    for p in people:
        quiet = now - (p.last_seen_at or p.consented_at) > slot_timeout(study)
        status = "finished" if p.finished_at else "timed out" if quiet else "in progress"
        minutes = (p.finished_at - p.consented_at).total_seconds() / 60 if p.finished_at else None
        rows.append({"participant_id": p.platform_pid or p.public_id, "session_id": p.platform_session_id or "",
                     "started_at": _iso(p.consented_at), "finished_at": _iso(p.finished_at),
                     "minutes": round(minutes, 1) if minutes is not None else None, "status": status,
                     "failed_checks": p.catch_failures, "excluded": int(p.excluded),
                     "code": completion_code(study.options, p.excluded) if p.finished_at else ""})
    return pd.DataFrame(rows, columns=["participant_id", "session_id", "started_at", "finished_at", "minutes",
                                       "status", "failed_checks", "excluded", "code"])


def places(db: StudyDB, study_id: int) -> tuple[int, int | None, str]:
    """Places held now (finished or active, not excluded), the cap (None: none) and the status."""
    with db.read() as s:
        study = s.get(Study, study_id)
        if study is None:
            raise LookupError(f"no study with id {study_id}")
        return len(held_slots(s, study, utcnow())), study.options.max_participants, study.status


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
    args = ap.parse_args(argv)
    if args.out is None and args.participants is None:
        ap.error("nothing to write: give --out and/or --participants")
    if args.db is not None and not args.db.is_file():
        print(f"error: no database at {args.db}", file=sys.stderr)
        return 2
    db = open_db(args.db)
    if args.participants is not None:
        known = studies(db)
        ids = dict(zip(known["name"], known["id"]))
        if args.study not in ids:
            print(f"error: --participants needs --study, one of: {', '.join(ids) or '(no study yet)'}",
                  file=sys.stderr)
            return 2
        _write(args.participants, platform_participants(db, int(ids[args.study])), "participants")
    if args.out is not None:
        _write(args.out, votes_long(db, args.study), "votes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
