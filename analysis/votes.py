"""Read the study's long vote format (SQLite view `votes_long` or CSV), validate it, apply exclusions.

    from analysis.votes import read_db, validate, apply_exclusions
    raw, db_methods = read_db("var/study.sqlite")
    votes = validate(raw, "var/study.sqlite")
    kept, participants, repeats = apply_exclusions(votes)   # the study's own catch rule, carried by the votes

Every problem a user can fix raises `VoteDataError` whose message is one line that names the fix.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd

from vote_format import (CATCH_LABEL, COLUMNS, DEFAULT_MAX_FAILED_CATCH, METHODS_VIEW, PARTICIPANTS_VIEW, QUESTIONS,
                         REQUIRED_COLUMNS, TEXT_COLUMNS, VOTES_VIEW, default_db_path, missing_columns)

__all__ = ["VoteDataError", "apply_exclusions", "default_db_path", "declared_methods_for", "exclusion_rule",
           "methods_in", "questions_in", "read_csv", "read_db", "read_db_participants", "select_study", "validate"]
# The reason given for a participant dropped by Prolific's decision on their submission.
PLATFORM_REASON = "Prolific: {status}"
NO_SUBMISSION = "not in the Prolific export"


class VoteDataError(Exception):
    """A problem with the votes that the user can fix; the message is one line."""


def _connect(path: Path) -> tuple[sqlite3.Connection, set[str]]:
    """A read-only connection to a study database and the names of its tables and views."""
    if not path.is_file():
        raise VoteDataError(
            f"no study database at {path}; run a study with the study app first "
            f"(streamlit run study_app/main.py), or pass --db PATH or --csv PATH, or set USGAN_STUDY_DB"
        )
    try:
        # Read-only so that analysing never creates or locks the app's database; timeout rides out a writer.
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error as exc:
        raise VoteDataError(f"cannot open {path} as SQLite ({exc})") from None
    try:
        names = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type IN ('table','view')")}
    except sqlite3.DatabaseError as exc:
        con.close()
        raise VoteDataError(f"{path} is not a readable SQLite database ({exc})") from None
    return con, names


def read_db(path: str | os.PathLike) -> tuple[pd.DataFrame, list[tuple[str | None, str]]]:
    """Return the `votes_long` rows and the (study_id, method) pairs the database declares, if any."""
    path = Path(path)
    con, names = _connect(path)
    try:
        if VOTES_VIEW not in names:
            raise VoteDataError(
                f"{path} has no '{VOTES_VIEW}' view; is it a study database made by study_app? "
                f"(a CSV export can be read with --csv PATH)"
            )
        try:
            votes = pd.read_sql_query(f"SELECT * FROM {VOTES_VIEW}", con)
        except (sqlite3.Error, pd.errors.DatabaseError) as exc:
            raise VoteDataError(f"cannot read the '{VOTES_VIEW}' view of {path} ({exc})") from None
        return votes, _declared_methods(con, names)
    finally:
        con.close()


def read_db_participants(path: str | os.PathLike) -> pd.DataFrame:
    """The `participant_summary` rows: each participant's key with their Prolific id (for Prolific's export)."""
    path = Path(path)
    con, names = _connect(path)
    try:
        if PARTICIPANTS_VIEW not in names:
            raise VoteDataError(f"{path} has no '{PARTICIPANTS_VIEW}' view (a database from an older study app: "
                                f"open it once with the current app, or pass --participants participants.csv)")
        return pd.read_sql_query(f"SELECT participant_id, study_id, prolific_pid FROM {PARTICIPANTS_VIEW}", con)
    finally:
        con.close()


def _declared_methods(con: sqlite3.Connection, names: set[str]) -> list[tuple[str | None, str]]:
    """(study_id, method) pairs from the methods view; [] where the database has none (a hand-made one)."""
    if METHODS_VIEW not in names:
        return []
    try:
        rows = con.execute(f"SELECT study_id, method FROM {METHODS_VIEW}").fetchall()
    except sqlite3.Error:
        return []
    return [(None if study is None else str(study), str(method)) for study, method in rows if method is not None]


def read_csv(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV in the long vote format, ids kept as text."""
    path = Path(path)
    if not path.is_file():
        raise VoteDataError(f"no CSV at {path}; export the votes from the study app's admin page or fix the path")
    try:
        return pd.read_csv(path, dtype={c: "string" for c in TEXT_COLUMNS}, keep_default_na=True)
    except pd.errors.EmptyDataError:
        raise VoteDataError(f"{path} is empty (no header row); it needs at least the columns "
                            f"{', '.join(REQUIRED_COLUMNS)}") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise VoteDataError(f"cannot parse {path} as CSV ({str(exc).splitlines()[0]})") from None


def validate(raw: pd.DataFrame, source: str = "the vote table") -> pd.DataFrame:
    """Check the required columns, normalise types, and return a clean copy of the long votes."""
    missing = missing_columns(raw.columns)
    if missing:
        raise VoteDataError(
            f"{source} lacks the column{'s' if len(missing) > 1 else ''} {', '.join(missing)}; "
            f"the long vote format needs at least {', '.join(REQUIRED_COLUMNS)}"
        )
    if len(raw) == 0:
        raise VoteDataError(f"no votes yet in {source}; run a study first")
    votes = raw.copy()
    for col in COLUMNS:
        if col not in votes.columns:
            votes[col] = np.nan
    for col in TEXT_COLUMNS:
        # Plain object columns of str/None: ids arrive as ints from SQLite and as text from CSV, and must match.
        values = votes[col]
        present = values.notna().to_numpy()
        text = np.full(len(votes), None, dtype=object)
        text[present] = values[present].astype(str).str.strip().to_numpy(dtype=object)
        text[text == ""] = None
        votes[col] = pd.Series(text, index=votes.index, dtype=object)
    present = votes["question"].notna()
    votes.loc[present, "question"] = votes.loc[present, "question"].str.lower()
    votes["is_catch"] = pd.to_numeric(votes["is_catch"], errors="coerce").fillna(0).astype(int).clip(0, 1)
    for col in ("catch_passed", "position", "response_ms", "excluded", "exclude_after_failed_checks", "finished"):
        votes[col] = pd.to_numeric(votes[col], errors="coerce")
    return votes


def select_study(votes: pd.DataFrame, study_id: str | None, source: str = "the vote table") -> pd.DataFrame:
    """Keep one study's votes; refuse to pool several studies silently."""
    studies = sorted(votes["study_id"].dropna().unique())
    if study_id is not None:
        chosen = votes[votes["study_id"] == str(study_id)]
        if chosen.empty:
            raise VoteDataError(f"no votes for study '{study_id}' in {source}; studies there: "
                                f"{', '.join(studies) or '(none tagged)'}")
        return chosen
    if len(studies) > 1:
        raise VoteDataError(f"{source} holds votes from {len(studies)} studies ({', '.join(studies)}); "
                            f"choose one with --study ID")
    return votes


def exclusion_rule(votes: pd.DataFrame, override: int | None = None) -> tuple[int, str]:
    """The catch rule to apply (exclude at this many failed checks; 0: off) and where it comes from, in words."""
    carried = pd.to_numeric(votes["exclude_after_failed_checks"], errors="coerce").dropna().unique()
    if len(carried) > 1:
        raise VoteDataError(f"the votes carry {len(carried)} different exclusion rules; analyse one study "
                            f"with --study ID")
    study = int(carried[0]) if len(carried) else None
    if override is None:
        if study is None:
            return DEFAULT_MAX_FAILED_CATCH, "default, the votes carry no rule"
        return study, "the study's rule"
    if study is None:
        return override, "--max-failed-catch"
    return override, f"--max-failed-catch, overriding the study's {study}"


def apply_exclusions(
    votes: pd.DataFrame, max_failed_catch: int | None = None, min_trials: int | None = None,
    min_median_ms: float | None = None, keep_unfinished: bool = False, platform: pd.Series | None = None,
    keep_statuses: tuple[str, ...] = ("APPROVED",),
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Drop catch rows, repeats and excluded participants: (kept votes, one row per participant, repeats dropped).

    Unfinished participants (finished == 0) are dropped unless keep_unfinished; `platform`, Prolific's status
    per participant_id, keeps only keep_statuses and drops everyone without a submission."""
    # max_failed_catch None applies the study's rule carried by the votes; 0 turns the catch rule off.
    max_failed_catch, _ = exclusion_rule(votes, max_failed_catch)
    is_catch = votes["is_catch"].to_numpy() == 1
    # A catch row without catch_passed is judged by its label, which the app sets to catch_correct on a pass.
    passed = votes["catch_passed"].where(votes["catch_passed"].notna(),
                                         (votes["method"] == CATCH_LABEL).astype(float))
    trials = votes[~is_catch & votes["method"].notna().to_numpy()]
    ids = pd.Index(sorted(votes["participant_id"].dropna().unique()), name="participant_id")
    per_catch = pd.DataFrame({"participant_id": votes["participant_id"][is_catch],
                              "failed": (passed[is_catch] == 0).astype(int)}).groupby("participant_id")["failed"]
    participants = pd.DataFrame({
        "catch_trials": per_catch.size().reindex(ids, fill_value=0),
        "failed_catch": per_catch.sum().reindex(ids, fill_value=0),
        "trials": trials.groupby("participant_id")["item_id"].nunique().reindex(ids, fill_value=0),
    }, index=ids).astype(int)
    participants["median_ms"] = trials.groupby("participant_id")["response_ms"].median().reindex(ids)
    # NaN where the votes carry no flag (a CSV from elsewhere): such participants are kept.
    participants["finished"] = votes.groupby("participant_id")["finished"].max().reindex(ids)
    participants = participants.reset_index()
    rules = [(participants["finished"] == 0 if not keep_unfinished else None, "unfinished")]
    if platform is not None:
        # Prolific's decision on each submission; no submission at all: a made-up or copied link.
        status = participants["participant_id"].map(platform)
        rules.append((status.isna(), NO_SUBMISSION))
        rules += [(status == s, PLATFORM_REASON.format(status=s))
                  for s in sorted(set(status.dropna()) - set(keep_statuses))]
    rules += [
        (participants["failed_catch"] >= max_failed_catch if max_failed_catch else None,
         f"failed >= {max_failed_catch} catch trials"),
        (participants["trials"] < min_trials if min_trials else None, f"fewer than {min_trials} trials"),
        (participants["median_ms"] < min_median_ms if min_median_ms else None,
         f"median response under {min_median_ms:g} ms" if min_median_ms else ""),
    ]
    reasons = [[] for _ in range(len(participants))]
    for mask, text in rules:
        for k in np.flatnonzero(mask.to_numpy()) if mask is not None else ():
            reasons[k].append(text)
    participants["excluded"] = [bool(r) for r in reasons]
    participants["reason"] = ["; ".join(r) for r in reasons]
    keep_ids = set(participants.loc[~participants["excluded"], "participant_id"])
    valid = trials[trials["participant_id"].isin(keep_ids) & trials["item_id"].notna() & trials["question"].notna()]
    # One vote per (participant, item, question), as the app's unique key guarantees; a CSV from elsewhere may
    # repeat one, and the last answer is the participant's final word.
    kept = valid
    if kept["answered_at"].notna().any():
        kept = kept.sort_values("answered_at", kind="stable", na_position="first")
    kept = kept.drop_duplicates(["participant_id", "item_id", "question"], keep="last")
    return kept.reset_index(drop=True), participants, len(valid) - len(kept)


def methods_in(votes: pd.DataFrame, known: list[str] | tuple[str, ...] | None = None) -> list[str]:
    """Known methods in their given order, then any other method that received a vote (sorted)."""
    known = [m for m in dict.fromkeys(known or [])]
    chosen = sorted(set(votes["method"].dropna()) - set(known))
    return known + chosen


def questions_in(votes: pd.DataFrame) -> list[str]:
    """The paper's questions first in its order, then any other question (sorted)."""
    present = set(votes["question"].dropna())
    return [q for q in QUESTIONS if q in present] + sorted(present - set(QUESTIONS))


def declared_methods_for(pairs: list[tuple[str | None, str]], study_id: str | None) -> list[str]:
    """The method list the database declares for one study (or for all, when untagged)."""
    wanted = [m for s, m in pairs if s is None or study_id is None or s == study_id]
    return list(dict.fromkeys(wanted))
