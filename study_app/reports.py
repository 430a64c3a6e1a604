"""Read-only views of a study for the admin page and the export command: progress, participants, long votes.

    python -m study_app.reports --out votes.csv [--db PATH] [--study NAME]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
from sqlalchemy import text

from study_app.db import VOTES_LONG_COLUMNS, StudyDB, open_db


def studies(db: StudyDB) -> pd.DataFrame:
    """Every study: id, name, methods, created time, newest first."""
    with db.read() as s:
        rows = s.execute(text("SELECT id, name, methods, created_at FROM studies ORDER BY id DESC")).all()
    frame = pd.DataFrame(rows, columns=["id", "name", "methods", "created_at"])
    frame["methods"] = [json.loads(m) if isinstance(m, str) else list(m) for m in frame["methods"]]
    return frame


def votes_long(db: StudyDB, study_name: str | None = None) -> pd.DataFrame:
    """The long vote format (the votes_long view), optionally for one study; empty frame keeps the columns."""
    query = "SELECT * FROM votes_long" + (" WHERE study_id = :study" if study_name else "")
    with db.read() as s:
        result = s.execute(text(query), {"study": study_name} if study_name else {})
        frame = pd.DataFrame(result.all(), columns=list(result.keys()))
    return frame.reindex(columns=list(VOTES_LONG_COLUMNS))


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """CSV with a header, empty cells for missing values (catch_passed of ordinary trials)."""
    return frame.to_csv(index=False).encode()


def participants(db: StudyDB, study_id: int) -> pd.DataFrame:
    """One row per participant: ids, progress, catch failures, exclusion."""
    sql = """
    SELECT p.public_id AS participant_id, p.platform_pid, p.platform_session_id, p."index" AS participant_index,
           p.consented_at, p.finished_at,
           SUM(t.answered_at IS NOT NULL) AS answered, COUNT(t.id) AS trials,
           p.catch_failures, p.excluded
    FROM participants p LEFT JOIN trials t ON t.participant_id = p.id
    WHERE p.study_id = :study GROUP BY p.id ORDER BY p."index"
    """
    with db.read() as s:
        result = s.execute(text(sql), {"study": study_id})
        frame = pd.DataFrame(result.all(), columns=list(result.keys()))
    if not frame.empty:
        frame["excluded"] = frame["excluded"].astype(bool)
    return frame


def item_progress(db: StudyDB, study_id: int) -> pd.DataFrame:
    """Per item: answered showings (catch trials apart) and participants still due to see it."""
    sql = """
    SELECT i.key AS item_id, i.item_group,
           SUM(t.answered_at IS NOT NULL AND NOT t.is_catch) AS answered,
           SUM(t.answered_at IS NULL AND NOT t.is_catch) AS pending,
           SUM(t.answered_at IS NOT NULL AND t.is_catch) AS catch_answered
    FROM items i LEFT JOIN trials t ON t.item_id = i.id
    WHERE i.study_id = :study GROUP BY i.id ORDER BY i.key
    """
    with db.read() as s:
        result = s.execute(text(sql), {"study": study_id})
        return pd.DataFrame(result.all(), columns=list(result.keys()))


def method_progress(votes: pd.DataFrame) -> pd.DataFrame:
    """Votes per method and question over ordinary trials, as counts (catch trials apart)."""
    real = votes[votes["is_catch"] == 0]
    if real.empty:
        return pd.DataFrame()
    return real.pivot_table(index="method", columns="question", values="participant_id", aggfunc="count",
                            fill_value=0)


def main(argv: list[str] | None = None) -> int:
    """Export the long votes of a database (or one study) to CSV."""
    ap = argparse.ArgumentParser(prog="python -m study_app.reports", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", type=Path, help="SQLite file (default: $USGAN_STUDY_DB or <repo>/var/study.sqlite)")
    ap.add_argument("--study", help="only this study (its name)")
    ap.add_argument("--out", type=Path, required=True, help="CSV file to write")
    args = ap.parse_args(argv)
    if args.db is not None and not args.db.is_file():
        print(f"error: no database at {args.db}", file=sys.stderr)
        return 2
    frame = votes_long(open_db(args.db), args.study)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(to_csv_bytes(frame))
    print(f"wrote {len(frame)} votes to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
