"""A paid study's doors, under AppTest and the data layer: consent and debrief texts, the estimated duration, the
start window, the per-address limit, earlier participants, declining, and the way back to Prolific."""

import hashlib
import math
import sqlite3

import pytest
import yaml

from study_app import enrolment, information
from study_app import participation as part
from study_app.build import StudyBuildError, main
from study_app.db import StudyDB
from study_app.enrolment import FULL, OVER_LIMIT, TOOK_PART, NotEnrolling
from study_app.reports import main as reports_main
from study_app.spec import DEFAULT_SECONDS_PER_SCREEN

from .study_helpers import CONSENT_MD, METHODS, age, answer, build_into, consent_and_start, new_app, prolific_fields

STUDY_ID = "0123456789abcdef01234567"
PID = "5f8e1c2b9a7d3e4f5a6b7c8d"
DEBRIEF = "# Thank you\n\nThe edits came from four methods; we compare them. Contact: a.researcher@example.org.\n"


def test_consent_and_debrief_are_the_studys_own_files_stored_with_their_hash(db_path, stimuli, tmp_path):
    (tmp_path / "debrief.md").write_text(DEBRIEF)
    build_into(db_path, stimuli, tmp_path, "s1", **prolific_fields(tmp_path, prolific_study_id=STUDY_ID),
          debrief=tmp_path / "debrief.md")
    stored = dict(sqlite3.connect(db_path).execute("SELECT kind, sha256 FROM study_texts").fetchall())
    assert stored == {"consent": hashlib.sha256(CONSENT_MD.encode()).hexdigest(),
                      "debrief": hashlib.sha256(DEBRIEF.encode()).hexdigest()}
    at = new_app(PROLIFIC_PID=PID, STUDY_ID=STUDY_ID, SESSION_ID="s")
    screens = 3 + 2
    minutes = math.ceil(screens * DEFAULT_SECONDS_PER_SCREEN / 60)
    shown = at.markdown[0].value
    assert "Ethics approval: EX-2026-001" in shown and f"There are {screens} screens, about {minutes} minutes" in shown
    consent_and_start(at)
    while at.radio:
        answer(at, 0)
    assert "we compare them. Contact: a.researcher@example.org" in "".join(m.value for m in at.markdown)
    # A file that cannot be read stops the build with its name, and nothing is built.
    with pytest.raises(StudyBuildError, match="consent file not found: .*missing.md"):
        build_into(db_path, stimuli, tmp_path, "s2", consent=tmp_path / "missing.md")


def test_the_duration_comes_from_the_trials_and_the_measured_pace_of_the_pilot(db_path, stimuli, tmp_path):
    config = tmp_path / "s1.yaml"
    config.write_text(yaml.safe_dump({
        "name": "s1", "inputs": str(stimuli / "inputs"), "out": "built", "expressions": ["happy", "sad", "angry"],
        "methods": {m: str(stimuli / "methods" / m) for m in METHODS}, "trials_per_participant": 4,
        "catch_trials": 2, "exclude_after_failed_checks": 2, "recruitment": "prolific", "consent": "consent.md",
        "prolific_study_id": STUDY_ID, "exclude_participants_of": [], "seconds_per_screen": 30}))
    (tmp_path / "consent.md").write_text(CONSENT_MD)
    assert main(["--config", str(config), "--db", str(db_path)]) == 0
    assert main(["--config", str(config), "--db", str(db_path), "--pilot"]) == 0  # as the README says
    db = StudyDB(db_path)
    ids = dict(db.read_engine.connect().exec_driver_sql("SELECT name, id FROM studies").fetchall())
    pilot = part.load_study(db, ids["s1-pilot"])
    assert (pilot.recruitment, pilot.options.prolific_study_id, pilot.options.max_participants,
            pilot.options.pilot_of) == ("pilot", None, 5, "s1")
    before = information.estimate(db, ids["s1"])
    assert (before.screens, before.minutes) == (6, 3) and before.source.startswith("assumed (30 s per screen")
    for k, minutes in enumerate((12, 18, 15)):  # three pilot finishers: 2, 3 and 2.5 minutes per screen
        person = enrolment.enroll(db, ids["s1-pilot"], f"pilot{k}")
        while (trial := part.progress(db, person).trial) is not None:
            part.submit(db, person, trial.trial_id, dict.fromkeys(part.questions_for(trial.is_catch), 0))
        con = sqlite3.connect(db_path)
        con.execute("UPDATE participants SET finished_at = datetime(finished_at), consented_at = "
                    "datetime(finished_at, ?) WHERE public_id = ?",
                    (f"-{minutes} minutes", f"pilot{k}"))
        con.commit()
    after = information.estimate(db, ids["s1"])
    assert after.source == "measured: median of 3 finishers of its pilot s1-pilot"
    assert after.seconds_per_screen == pytest.approx(150, abs=1) and after.minutes == 15  # 6 screens x 2.5 min
    db.dispose()
    assert reports_main(["--db", str(db_path), "--study", "s1", "--duration"]) == 0


def test_a_place_holds_for_the_start_window_and_a_late_starter_moves_to_a_free_slot(db_path, stimuli, tmp_path):
    sid = build_into(db_path, stimuli, tmp_path, "s1", max_participants=2, start_window_minutes=5)
    db = StudyDB(db_path)
    slow = enrolment.enroll(db, sid, "slow")
    enrolment.enroll(db, sid, "quick")
    with pytest.raises(NotEnrolling, match=FULL):
        enrolment.enroll(db, sid, "third")  # both places are held within the start window
    age(db, 6, "slow")  # slow has answered nothing for longer than the window
    third = enrolment.enroll(db, sid, "third")
    slots = lambda: dict(sqlite3.connect(db_path).execute("SELECT public_id, slot FROM participants").fetchall())
    assert slots() == {"slow": 0, "quick": 1, "third": 0}
    # The slow one comes back: no free place is left, and they are told so rather than doubling slot 0.
    assert enrolment.keep_place(db, slow) == FULL
    # Once the third starts and a place frees up, the slow one gets that slot with its own plan.
    part.submit(db, third, part.progress(db, third).trial.trial_id,
                dict.fromkeys(part.questions_for(part.progress(db, third).trial.is_catch), 0))
    age(db, 6, "quick")
    assert enrolment.keep_place(db, slow) is None
    assert slots() == {"slow": 1, "quick": 1, "third": 0}
    con = sqlite3.connect(db_path)
    plan = ("SELECT item_id, is_catch, layout FROM trials t JOIN participants p ON p.id = t.participant_id "
            "WHERE p.public_id = ? ORDER BY ordinal")
    assert con.execute(plan, ("slow",)).fetchall() == con.execute(plan, ("quick",)).fetchall()
    db.dispose()


def test_the_per_address_limit_refuses_neutrally_and_forgets_the_address(db_path, stimuli, tmp_path):
    sid = build_into(db_path, stimuli, tmp_path, "s1", enrolments_per_address_per_hour=2)
    db = StudyDB(db_path)
    enrolment.enroll(db, sid, "a", address="203.0.113.7")
    enrolment.enroll(db, sid, "b", address="203.0.113.7")
    assert enrolment.admission(db, sid, address="203.0.113.7") == OVER_LIMIT
    with pytest.raises(NotEnrolling, match=OVER_LIMIT):
        enrolment.enroll(db, sid, "c", address="203.0.113.7")
    enrolment.enroll(db, sid, "d", address="198.51.100.4")  # another address is not affected
    enrolment.enroll(db, sid, "e")  # nor a participant whose address is unknown
    stored = sqlite3.connect(db_path).execute("SELECT address_hash FROM participants").fetchall()
    assert not any("203.0.113" in str(v) for (v,) in stored)
    age(db, 61)
    enrolment.enroll(db, sid, "f", address="203.0.113.7")  # an hour later the address may start again
    assert sqlite3.connect(db_path).execute("SELECT COUNT(address_hash) FROM participants").fetchone() == (1,)
    db.dispose()


def test_people_from_earlier_studies_are_turned_away_with_the_way_back(db_path, stimuli, tmp_path):
    build_into(db_path, stimuli, tmp_path, "s0", **prolific_fields(tmp_path, prolific_study_id="1" * 24))
    s0 = StudyDB(db_path)
    enrolment.enroll(s0, 1, "x", PID, "1" * 24, "s")
    s0.dispose()
    pids = tmp_path / "batch1.txt"
    pids.write_text("# batch 1\n" + "e" * 24 + "\n\n")
    build_into(db_path, stimuli, tmp_path, "s1", **prolific_fields(
        tmp_path, prolific_study_id=STUDY_ID, exclude_participants_of=("s0",), exclude_pids_file=pids,
        screen_out_code="SCREENED"))
    for pid in (PID, "E" * 24):
        at = new_app(PROLIFIC_PID=pid, STUDY_ID=STUDY_ID, SESSION_ID="s")
        assert at.info[0].value == TOOK_PART and not at.checkbox
        assert at.code[0].value == "SCREENED"
        assert at.get("link_button")[0].proto.url == "https://app.prolific.com/submissions/complete?cc=SCREENED"
    assert new_app(PROLIFIC_PID="d" * 24, STUDY_ID=STUDY_ID, SESSION_ID="s").checkbox  # a newcomer gets in
    pids.write_text("e" * 24 + "\nnot-a-pid\n")
    with pytest.raises(StudyBuildError, match="batch1.txt: lines 2 are not Prolific ids"):
        build_into(db_path, stimuli, tmp_path, "s2", **prolific_fields(tmp_path, prolific_study_id="2" * 24,
                                                                   exclude_pids_file=pids))
    with pytest.raises(StudyBuildError, match="exclude_participants_of names studies not in .*: nope"):
        build_into(db_path, stimuli, tmp_path, "s3", **prolific_fields(tmp_path, prolific_study_id="3" * 24,
                                                                   exclude_participants_of=("nope",)))


def test_declining_stores_nothing_and_gives_the_no_consent_code(db_path, stimuli, tmp_path):
    build_into(db_path, stimuli, tmp_path, "s1", no_consent_code="NOCONSENT")
    at = new_app(study="s1")
    at.button(key="consent_decline").click().run()
    assert at.info[0].value == information.DECLINED and at.code[0].value == "NOCONSENT" and not at.checkbox
    assert sqlite3.connect(db_path).execute("SELECT COUNT(*) FROM participants").fetchone() == (0,)


def test_a_full_prolific_study_tells_newcomers_to_return_their_submission(db_path, stimuli, tmp_path):
    sid = build_into(db_path, stimuli, tmp_path, "s1", **prolific_fields(tmp_path, prolific_study_id=STUDY_ID),
                max_participants=1)
    db = StudyDB(db_path)
    enrolment.enroll(db, sid, "first", "a" * 24, STUDY_ID, "s")
    db.dispose()
    at = new_app(PROLIFIC_PID=PID, STUDY_ID=STUDY_ID, SESSION_ID="s")
    assert at.info[0].value == FULL and at.markdown[0].value == information.RETURN_ON_PROLIFIC
    assert not at.checkbox and not at.code
