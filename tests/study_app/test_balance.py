"""Completion-based balance: quiet and excluded participants give their slot back; the cap counts held places."""

import sqlite3

import pytest

from study_app import enrolment
from study_app import participation as part
from study_app.build import build_study
from study_app.enrolment import FULL, NotEnrolling
from study_app.reports import platform_participants
from study_app.settings import CATCH_LABEL

from .study_helpers import age, answer_all, spec_for


def slots(db):
    return dict(sqlite3.connect(db.path).execute("SELECT public_id, slot FROM participants").fetchall())


def right(trial, labels):
    return labels.index(CATCH_LABEL) if trial.is_catch else 0


def answer_first(db, participant_id):
    """Answer the participant's first trial: from now on their place holds for the slot timeout."""
    trial = part.progress(db, participant_id).trial
    part.submit(db, participant_id, trial.trial_id, dict.fromkeys(part.questions_for(trial.is_catch), 0))


def test_a_quiet_participants_slot_goes_to_the_next_newcomer(db, stimuli, tmp_path):
    sid = build_study(spec_for(stimuli, tmp_path / "s", slot_timeout_minutes=30), db)
    answer_first(db, enrolment.enroll(db, sid, "gone"))
    enrolment.enroll(db, sid, "busy")
    assert slots(db) == {"gone": 0, "busy": 1}
    age(db, 20, "gone")
    enrolment.enroll(db, sid, "early")  # 20 quiet minutes of 30: the slot is still held
    age(db, 15, "gone")
    enrolment.enroll(db, sid, "late")
    assert slots(db) == {"gone": 0, "busy": 1, "early": 2, "late": 0}
    # Same slot, same plan: the newcomer sees exactly what the drop-out would have seen.
    con = sqlite3.connect(db.path)
    plans = {p: con.execute("SELECT item_id, is_catch, layout FROM trials t JOIN participants p ON p.id = "
                            "t.participant_id WHERE p.public_id = ? ORDER BY ordinal", (p,)).fetchall()
             for p in ("gone", "late")}
    assert plans["gone"] == plans["late"]
    people = platform_participants(db, sid).set_index("participant_id")
    assert people.loc["gone", "status"] == "timed out" and people.loc["busy", "status"] == "in progress"


def test_an_excluded_participants_slot_is_reused_and_a_finished_one_is_not(db, stimuli, tmp_path):
    sid = build_study(spec_for(stimuli, tmp_path / "s", failed_checks_code="NOPE"), db)
    fail = enrolment.enroll(db, sid, "fail")
    ok = enrolment.enroll(db, sid, "ok")
    answer_all(db, fail, pick=lambda t, labels: (labels.index(CATCH_LABEL) + 1) % 4 if t.is_catch else 0)
    answer_all(db, ok, pick=right)
    age(db, 10_000, "ok")  # finished long ago: a completed slot is kept for good
    enrolment.enroll(db, sid, "next")
    assert slots(db) == {"fail": 0, "ok": 1, "next": 0}
    people = platform_participants(db, sid).set_index("participant_id")
    assert people.loc["fail", ["excluded", "code", "status"]].tolist() == [1, "NOPE", "finished"]
    assert people.loc["ok", ["excluded", "code", "failed_checks"]].tolist() == [0, "DONE123", 0]
    assert people.loc["next", "code"] == "" and people.loc["ok", "minutes"] >= 0


def test_the_cap_counts_places_held_and_frees_them_with_time(db, stimuli, tmp_path):
    sid = build_study(spec_for(stimuli, tmp_path / "s", max_participants=2, slot_timeout_minutes=5), db)
    first = enrolment.enroll(db, sid, "a")
    enrolment.enroll(db, sid, "b")
    with pytest.raises(NotEnrolling, match=FULL):
        enrolment.enroll(db, sid, "c")
    assert enrolment.admission(db, sid) == FULL
    assert enrolment.enroll(db, sid, "a") == first  # someone already in is never refused
    age(db, 6, "b")
    enrolment.enroll(db, sid, "c")
    assert slots(db)["c"] == 1
    with pytest.raises(NotEnrolling):
        enrolment.enroll(db, sid, "d")
