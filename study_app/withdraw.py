"""Delete one participant's data on request: their votes, trials and enrolment; the act is logged without the id.

    python -m study_app.withdraw --study study1 --pid 5f8e1c2b9a7d3e4f5a6b7c8d [--db PATH]

`--pid` takes the Prolific id, or the pseudonymous participant_id of the exports (anonymous-link participants have
only that one: the `pid` in their URL). Backups taken before keep the data until they rotate out.

Balance: a participant's slot is freed only if they held it (finished, or active and not excluded) and nobody
else holds the same slot; the next newcomer then takes exactly that slot (the lowest free one), with the same
items and layouts, so completers again fill the slots without holes. If another participant holds the slot (one
who came back after their slot was reused), nothing is freed. Nothing else moves: no other participant's slot,
plan or index changes, and the withdrawn index is never reused.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, func, or_, select

from study_app.db import StudyDB, open_db
from study_app.enrolment import held_slots
from study_app.models import Participant, Study, Vote, Withdrawal, utcnow

log = logging.getLogger("study_app")


class WithdrawError(LookupError):
    """Nothing to withdraw: no such study, or no such participant in it (the message never repeats the id)."""


@dataclass(frozen=True)
class Withdrawn:
    """What a withdrawal deleted and what became of the slot."""

    votes_deleted: int
    finished: bool
    slot_freed: bool


def withdraw(db: StudyDB, study_name: str, pid: str) -> Withdrawn:
    """Delete the participant (by Prolific id or participant_id) with their trials and votes, in one transaction."""
    with db.write() as s:
        study = s.scalar(select(Study).where(Study.name == study_name))
        if study is None:
            raise WithdrawError(f"no study named {study_name!r} in {db.path}")
        person = s.scalar(select(Participant).where(
            Participant.study_id == study.id,
            or_(Participant.platform_pid == pid.lower(), Participant.public_id == pid)))
        if person is None:
            raise WithdrawError(f"no participant with that id in study {study_name!r}; nothing was deleted")
        now = utcnow()
        held = person.slot is not None and person.slot in held_slots(s, study, now)
        shared = person.slot is not None and person.slot in held_slots(s, study, now, excluding=person.id)
        votes = s.scalar(select(func.count()).where(Vote.participant_id == person.id))
        done = Withdrawn(votes, person.finished_at is not None, held and not shared)
        # secure_delete overwrites the freed pages, so the id and answers do not linger in the file's free space.
        s.connection().exec_driver_sql("PRAGMA secure_delete = ON")
        try:
            # The database's ON DELETE CASCADE takes the trials and votes with the participant.
            s.execute(delete(Participant).where(Participant.id == person.id))
            s.add(Withdrawal(study_id=study.id, at=now, participant_index=person.index, finished=done.finished,
                             votes_deleted=votes, slot_freed=done.slot_freed))
            s.flush()
        finally:
            s.connection().exec_driver_sql("PRAGMA secure_delete = OFF")
    # Outside any transaction (a checkpoint cannot run inside one): old page versions leave the WAL file too.
    raw = db.write_engine.raw_connection()
    try:
        raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        raw.close()
    log.info("withdrew one participant of study %s: %d votes deleted, %s, slot %s", study_name, votes,
             "finished" if done.finished else "unfinished", "freed" if done.slot_freed else "not freed")
    return done


def main(argv: list[str] | None = None) -> int:
    """Command line entry point: one line out, no id echoed."""
    ap = argparse.ArgumentParser(prog="python -m study_app.withdraw", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--study", required=True, help="the study's name")
    ap.add_argument("--pid", required=True, help="the participant's Prolific id, or participant_id of the exports")
    ap.add_argument("--db", type=Path, help="SQLite file (default: $USGAN_STUDY_DB or <repo>/var/study.sqlite)")
    args = ap.parse_args(argv)
    if args.db is not None and not args.db.is_file():
        print(f"error: no database at {args.db}", file=sys.stderr)
        return 2
    try:
        done = withdraw(open_db(args.db), args.study, args.pid)
    except WithdrawError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    freed = ("its slot is free for the next newcomer, who gets the same plan" if done.slot_freed
             else "no slot freed (the participant held none, or another participant holds the same slot)")
    print(f"withdrew one participant of study {args.study}: {done.votes_deleted} votes deleted "
          f"({'finished' if done.finished else 'unfinished'}); {freed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
