"""Which study and which participation a link leads to; a malformed or foreign link gets one neutral sentence.

A study is named by the `study` URL parameter, or found by Prolific's STUDY_ID, or set for the whole server with
USGAN_STUDY_NAME; the demo only when the server was started with `--demo`. Never "the newest study": building a
pilot into the same database must not move anyone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select

from study_app import enrolment
from study_app.db import StudyDB
from study_app.models import Study
from study_app.demo import ensure_demo_study, study_named
from study_app.participation import StudyView, load_study
from study_app.spec import NAME_RE, PROLIFIC_ID_RE, StudyOptions

PLATFORM_PARAMS = ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID")
ID_PARAM = "pid"
STUDY_PARAM = "study"
INVALID_LINK = "This study link is not valid. Please open the exact link you were given."
NO_STUDY = "No study has been built yet. Build one with `python -m study_app.build` (see study_app/README.md)."


@dataclass(frozen=True)
class Entry:
    """Where a valid link leads: the study, the participation if it exists, and the ids to enrol a newcomer with."""

    study: StudyView
    participant_id: int | None
    public_id: str | None  # the anonymous id from the URL (link, pilot); None: the page generates one
    platform_pid: str | None  # Prolific's participant id, lower-cased
    platform_study_id: str | None
    platform_session_id: str | None


@dataclass(frozen=True)
class Refusal:
    """A link that leads to no participation: one sentence, and the study's options when the study is known
    (paused, closed, full, over the limit), so that the page can show the way back to the platform."""

    sentence: str
    options: StudyOptions | None = None


def url_params(query: Mapping[str, str]) -> dict[str, str] | None:
    """The parameters we read, or None if any is malformed (overlong, markup, odd characters)."""
    found = {key: query[key] for key in (*PLATFORM_PARAMS, ID_PARAM, STUDY_PARAM) if key in query}
    ok = all(NAME_RE.match(v) if k == STUDY_PARAM else enrolment.valid_id(v) for k, v in found.items())
    return found if ok else None


def find_study(db: StudyDB, params: Mapping[str, str], demo: bool) -> int | None:
    """The study a link names: `study`, else Prolific's STUDY_ID, else USGAN_STUDY_NAME, else the demo if enabled."""
    if STUDY_PARAM in params:
        return study_named(db, params[STUDY_PARAM])
    if "STUDY_ID" in params:
        with db.read() as s:
            for study_id, options in s.execute(select(Study.id, Study.options)):
                if (options.prolific_study_id or "") == params["STUDY_ID"].lower():
                    return study_id
        return None
    if os.environ.get("USGAN_STUDY_NAME"):
        return study_named(db, os.environ["USGAN_STUDY_NAME"])
    return ensure_demo_study(db) if demo else None


def identity_problem(study: StudyView, params: Mapping[str, str]) -> bool:
    """True when the ids do not fit the study's recruitment mode."""
    pid = params.get("PROLIFIC_PID")
    if study.recruitment == "prolific":
        # Prolific's form exactly, and its own study: a '<pid>_' variant or another study's link never enters.
        return (pid is None or not PROLIFIC_ID_RE.match(pid.lower())
                or params.get("STUDY_ID", "").lower() != study.options.prolific_study_id)
    if study.recruitment == "link":
        return any(key in params for key in PLATFORM_PARAMS)  # a Prolific link to an anonymous study
    return False  # pilot: anonymous, or Prolific's preview ids without the study id check


def route(db: StudyDB, query: Mapping[str, str], demo: bool, address: str | None = None) -> Entry | Refusal:
    """The participation a link leads to, or what to show instead; `address` is the client's, for the limit."""
    params = url_params(query)
    if params is None:
        return Refusal(INVALID_LINK)
    study_id = find_study(db, params, demo)
    if study_id is None:
        if STUDY_PARAM in params or "STUDY_ID" in params:
            return Refusal(INVALID_LINK)
        with db.read() as s:  # a bare link to an empty database: the researcher's first try, not a participant
            return Refusal(INVALID_LINK if s.scalar(select(Study.id).limit(1)) is not None else NO_STUDY)
    study = load_study(db, study_id)
    if identity_problem(study, params):
        return Refusal(INVALID_LINK)
    pid = params["PROLIFIC_PID"].lower() if "PROLIFIC_PID" in params else None
    public_id = None if study.recruitment == "prolific" else params.get(ID_PARAM)
    participant_id = enrolment.find_participant(db, study_id, public_id, pid)
    if participant_id is None:
        # A newcomer: refuse before the consent form when they could not join anyway.
        why = enrolment.admission(db, study_id, pid, address)
        if why is not None:
            return Refusal(why, study.options)
    return Entry(study, participant_id, public_id, pid, params.get("STUDY_ID"), params.get("SESSION_ID"))
