"""Rotated online backups of a live study database, and the restore that puts one back.

    python -m study_app.backup --db /srv/study1/study.sqlite --to /srv/backups/study1 --keep 96   # from cron
    python -m study_app.backup --restore /srv/backups/study1/study-20261206T101500Z.backup --db /srv/study1/study.sqlite

A backup is SQLite's online backup API (`Connection.backup`): a consistent copy taken while the server writes,
the votes still in the WAL file included (a plain `cp` of the database file misses them). Each copy is
`<stem>-<UTC time>.backup`; the oldest beyond --keep are deleted. Restoring (server stopped) checks the copy,
moves the current database aside as `<db>.before-restore-<UTC time>` (nothing is lost), and copies the backup in.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path

import vote_format

BUSY_TIMEOUT_S = 30


class BackupError(Exception):
    """A backup or restore that cannot be done; the message names the problem and the fix."""


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def _copy(src_path: Path, dst_path: Path) -> None:
    """Page-by-page online copy of src into a fresh dst."""
    src = sqlite3.connect(src_path, timeout=BUSY_TIMEOUT_S)
    dst = sqlite3.connect(dst_path)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def backup(db_path: Path, folder: Path, keep: int) -> tuple[Path, list[Path]]:
    """Copy the live database into folder under a new name; returns (the copy, the old copies deleted)."""
    if keep < 1:
        raise BackupError("--keep must be 1 or more")
    if not db_path.is_file():
        raise BackupError(f"no database at {db_path}; pass the study's --db")
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{db_path.stem}-{_stamp()}.backup"
    part = final.with_name(final.name + ".part")
    try:
        _copy(db_path, part)
    except sqlite3.Error as err:
        part.unlink(missing_ok=True)
        raise BackupError(f"cannot back up {db_path} ({err})") from None
    part.replace(final)  # a half-written copy never carries the .backup name
    copies = sorted(folder.glob(f"{db_path.stem}-*.backup"))  # the UTC stamp sorts by time
    old = copies[:-keep]
    for path in old:
        path.unlink()
    return final, old


def check_copy(path: Path) -> int:
    """The number of votes in a backup, after SQLite's integrity check; BackupError if it is not a sound copy."""
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            if con.execute("PRAGMA integrity_check").fetchone() != ("ok",):
                raise BackupError(f"{path} fails SQLite's integrity check; restore an older copy")
            return con.execute(f"SELECT COUNT(*) FROM {vote_format.VOTES_VIEW}").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error as err:
        raise BackupError(f"{path} is not a study database backup ({err})") from None


def restore(copy: Path, db_path: Path) -> tuple[int, Path | None]:
    """Put a backup in place of the database (server stopped); returns (votes restored, where the old file went)."""
    if not copy.is_file():
        raise BackupError(f"no backup at {copy}")
    votes = check_copy(copy)
    aside = None
    if db_path.exists():
        aside = db_path.with_name(f"{db_path.name}.before-restore-{_stamp()}")
        # The file and its WAL and shared-memory files move together: the WAL may hold the latest votes.
        for suffix in ("", "-wal", "-shm"):
            old = Path(f"{db_path}{suffix}")
            if old.exists():
                old.replace(Path(f"{aside}{suffix}"))
    db_path.parent.mkdir(parents=True, exist_ok=True)
    _copy(copy, db_path)
    return votes, aside


def main(argv: list[str] | None = None) -> int:
    """Command line entry point: one line out, one line and exit code 1 on a problem."""
    ap = argparse.ArgumentParser(prog="python -m study_app.backup", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", type=Path, required=True, help="the study database")
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--to", type=Path, metavar="DIR", help="take a backup into DIR")
    what.add_argument("--restore", type=Path, metavar="BACKUP", help="put BACKUP in place of --db (server stopped)")
    ap.add_argument("--keep", type=int, default=96, help="backups kept in DIR (default 96: a day every 15 minutes)")
    args = ap.parse_args(argv)
    try:
        if args.to is not None:
            made, deleted = backup(args.db, args.to, args.keep)
            print(f"backed up {args.db} to {made} ({check_copy(made)} votes); {len(deleted)} old copies deleted")
        else:
            votes, aside = restore(args.restore, args.db)
            kept = f"; the previous database is now {aside}" if aside else ""
            print(f"restored {args.restore} to {args.db} ({votes} votes){kept}")
    except BackupError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
