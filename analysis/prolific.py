"""Prolific's submissions export joined to the study's participants: whose votes count, and how many of each group.

    from analysis.prolific import read_export, read_participants_csv, submission_statuses
    export = read_export("prolific_export.csv")              # the study's submissions, downloaded from Prolific
    people = read_participants_csv("participants.csv")       # python -m study_app.reports --participants ...
    status, summary = submission_statuses(export, people)   # Prolific's status per participant_id

Prolific's export names its columns "Participant id" and "Status" (older exports and the API: participant_id,
status); statuses are APPROVED, AWAITING REVIEW, RETURNED, REJECTED, TIMED-OUT, SCREENED OUT, ACTIVE, ... A
participant of the study whose PID is not in the export (a made-up or copied link) has no submission at all.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from analysis.votes import VoteDataError

APPROVED = "APPROVED"
AWAITING_REVIEW = "AWAITING REVIEW"
NOT_IN_EXPORT = "not in the Prolific export"


def _column_key(name: str) -> str:
    """'Participant id', 'participant_id' and 'PARTICIPANT ID' name the same column."""
    return "_".join(str(name).strip().lower().replace("_", " ").split())


def _read(path: str | os.PathLike, what: str, fix: str) -> pd.DataFrame:
    """A CSV as text, with normalised column names; VoteDataError naming the fix on a missing or bad file."""
    path = Path(path)
    if not path.is_file():
        raise VoteDataError(f"no {what} at {path}; {fix}")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise VoteDataError(f"cannot read {path} as the {what} ({str(exc).splitlines()[0]})") from None
    return frame.rename(columns=_column_key)


def read_export(path: str | os.PathLike) -> pd.DataFrame:
    """Prolific's submissions export as (prolific_pid, status): ids lower-cased, statuses upper-case with spaces."""
    frame = _read(path, "Prolific export", "download it from the study's Submissions page on Prolific")
    missing = [name for name in ("participant_id", "status") if name not in frame.columns]
    if missing:
        raise VoteDataError(f"{path} has no {' or '.join(missing)} column; is it Prolific's submissions export "
                            f"(columns 'Participant id' and 'Status')?")
    statuses = frame["status"].str.strip().str.upper().str.replace("_", " ")
    return pd.DataFrame({"prolific_pid": frame["participant_id"].str.strip().str.lower(), "status": statuses})


def read_participants_csv(path: str | os.PathLike) -> pd.DataFrame:
    """The study app's participants.csv as (participant_id, prolific_pid[, study_id])."""
    frame = _read(path, "participants file", "export it with `python -m study_app.reports --participants FILE "
                                             "--study NAME`")
    missing = [name for name in ("participant_id", "prolific_pid") if name not in frame.columns]
    if missing:
        raise VoteDataError(f"{path} lacks the column{'s' if len(missing) > 1 else ''} {', '.join(missing)}; "
                            f"export it with `python -m study_app.reports --participants FILE --study NAME`")
    return participant_ids(frame)


def participant_ids(frame: pd.DataFrame) -> pd.DataFrame:
    """(participant_id, prolific_pid[, study_id]) rows with a Prolific id, ids as lower-cased text."""
    keep = [c for c in ("participant_id", "prolific_pid", "study_id") if c in frame.columns]
    out = frame[keep].astype(str).apply(lambda col: col.str.strip())
    out["prolific_pid"] = out["prolific_pid"].str.lower()
    return out[(out["prolific_pid"] != "") & (out["prolific_pid"] != "none")]


def submission_statuses(export: pd.DataFrame, people: pd.DataFrame, study: str | None = None
                        ) -> tuple[pd.Series, dict]:
    """Prolific's status per participant_id (participants missing here have no submission) and the counts per
    status in the export, with the submissions whose PID never enrolled in the study."""
    if study is not None and "study_id" in people.columns:
        people = people[people["study_id"] == study]
    # A PID with several submissions (rare: a second place after a return) counts as approved if any is.
    ranked = export.assign(rank=(export["status"] != APPROVED).astype(int)).sort_values("rank", kind="stable")
    by_pid = ranked.drop_duplicates("prolific_pid").set_index("prolific_pid")["status"]
    status = people.set_index("participant_id")["prolific_pid"].map(by_pid).dropna()
    counts = export.drop_duplicates("prolific_pid")["status"].value_counts()
    summary = {
        "submissions": {str(k): int(v) for k, v in counts.sort_index().items()},
        "never_enrolled": int((~by_pid.index.isin(people["prolific_pid"])).sum()),
    }
    return status, summary
