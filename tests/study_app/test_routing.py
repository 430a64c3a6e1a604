"""Which study and participation a link reaches, under AppTest: Prolific ids, explicit routing, status, cap."""

import sqlite3

import pytest

from study_app import reports
from study_app.db import StudyDB
from study_app.enrolment import FULL, NOT_OPEN
from study_app.routing import INVALID_LINK, NO_STUDY
from study_app.settings import SERVER_ERROR

from .study_helpers import answer, build_into, consent_and_start, new_app, prolific_fields, screen_text

PROLIFIC_STUDY = "0123456789abcdef01234567"
PID = "5f8e1c2b9a7d3e4f5a6b7c8d"
IDS = dict(PROLIFIC_PID=PID, STUDY_ID=PROLIFIC_STUDY, SESSION_ID="sess1")






def count(db_path, sql="SELECT COUNT(*) FROM participants"):
    return sqlite3.connect(db_path).execute(sql).fetchone()[0]


@pytest.fixture
def prolific(db_path, stimuli, tmp_path):
    return build_into(db_path, stimuli, tmp_path, "main", **prolific_fields(tmp_path, prolific_study_id=PROLIFIC_STUDY))


def test_prolific_participant_finishes_once_and_returns_through_prolific(db_path, prolific):
    at = consent_and_start(new_app(**IDS))
    assert "pid" not in at.query_params
    while at.radio:
        answer(at, 1)
    assert at.get("link_button")[0].proto.url == "https://app.prolific.com/submissions/complete?cc=DONE123"
    # The same person with a new session, or their id in capitals: their own finish page, no second plan.
    for again in (new_app(**{**IDS, "SESSION_ID": "sess2"}), new_app(**{**IDS, "PROLIFIC_PID": PID.upper()})):
        assert again.title[0].value == "Thank you!" and not again.radio and not again.checkbox
        assert again.code[0].value == "DONE123"
    assert count(db_path) == 1
    assert sqlite3.connect(db_path).execute("SELECT platform_pid, platform_study_id, platform_session_id "
                                            "FROM participants").fetchone() == (PID, PROLIFIC_STUDY, "sess1")


@pytest.mark.parametrize("params", [
    {**IDS, "PROLIFIC_PID": PID + "_"},                     # the failed participant's second try in the issue
    {**IDS, "PROLIFIC_PID": PID[:-1]},                      # 23 characters
    {**IDS, "PROLIFIC_PID": PID[:-1] + "g"},                # not hexadecimal
    {"STUDY_ID": PROLIFIC_STUDY, "SESSION_ID": "s"},        # no PID: no anonymous participation on Prolific
    {**IDS, "STUDY_ID": "ffffffffffffffffffffffff"},        # another Prolific study
    {**IDS, "STUDY_ID": PROLIFIC_STUDY, "study": "main", "PROLIFIC_PID": "x"},
    {"PROLIFIC_PID": PID, "SESSION_ID": "s"},               # no STUDY_ID, no study: no study at all
    {"study": "main"},                                      # the anonymous way into a Prolific study
])
def test_malformed_or_foreign_prolific_links_never_reach_consent(db_path, prolific, params):
    at = new_app(**params)
    assert not at.exception
    assert [e.value for e in at.error] == [INVALID_LINK] and not at.checkbox and not at.button
    assert count(db_path) == 0


def test_a_pilot_built_later_moves_nobody_and_bare_urls_get_no_study(db_path, stimuli, tmp_path):
    build_into(db_path, stimuli, tmp_path, "main")
    at = consent_and_start(new_app(study="main"))
    pid = at.query_params["pid"]
    assert at.query_params["study"] == "main"
    answer(at)
    build_into(db_path, stimuli, tmp_path, "pilot1", recruitment="pilot")
    again = new_app(pid=pid, study="main")
    assert screen_text(again) == "Screen 2 of 4"
    # No "newest study" and no demo: a bare link names no study.
    bare = new_app()
    assert [e.value for e in bare.error] == [INVALID_LINK]
    assert count(db_path, "SELECT COUNT(*) FROM studies WHERE name = 'demo'") == 0
    assert count(db_path) == 1
    # A Prolific link into an anonymous study is refused too.
    assert [e.value for e in new_app(study="main", **IDS).error] == [INVALID_LINK]
    # A pilot takes anonymous people and Prolific preview ids without checking the study id.
    preview = new_app(study="pilot1", PROLIFIC_PID="preview-1", STUDY_ID="anything")
    assert preview.checkbox and not preview.error


def test_the_demo_only_when_asked_for(db_path, monkeypatch, stimuli):
    monkeypatch.setenv("USGAN_STUDY_DEMO_DIR", str(stimuli))
    at = new_app()
    assert at.info[0].value == NO_STUDY and not at.checkbox
    assert count(db_path, "SELECT COUNT(*) FROM studies") == 0
    monkeypatch.setenv("USGAN_STUDY_DEMO", "1")
    assert new_app().checkbox
    assert count(db_path, "SELECT name FROM studies") == "demo"


def test_pause_close_and_cap_stop_newcomers_but_not_those_already_in(db_path, stimuli, tmp_path):
    study_id = build_into(db_path, stimuli, tmp_path, "capped", max_participants=1)
    first = consent_and_start(new_app(study="capped"))
    pid = first.query_params["pid"]
    newcomer = new_app(study="capped")
    assert newcomer.info[0].value == FULL and not newcomer.checkbox
    db = StudyDB(db_path)
    reports.set_status(db, study_id, "paused")
    assert new_app(study="capped").info[0].value == NOT_OPEN
    assert screen_text(answer(new_app(pid=pid, study="capped"))) == "Screen 2 of 4"  # already in: carries on
    reports.set_status(db, study_id, "closed")
    assert new_app(study="capped").info[0].value == NOT_OPEN
    db.dispose()
    assert count(db_path) == 1


def test_a_link_study_returns_to_its_redirect(db_path, stimuli, tmp_path):
    build_into(db_path, stimuli, tmp_path, "lab", redirect_url="https://lab.example/done?code={code}")
    at = consent_and_start(new_app(study="lab"))
    while at.radio:
        answer(at, 0)
    assert at.get("link_button")[0].proto.url == "https://lab.example/done?code=DONE123"


def test_a_deleted_stimulus_shows_one_neutral_sentence(db_path, stimuli, tmp_path):
    build_into(db_path, stimuli, tmp_path, "main")
    at = consent_and_start(new_app(study="main"))
    for image in (tmp_path / "main" / "images").iterdir():
        image.unlink()  # the first screen's files are already in the server's cache; the second's are not
    at = answer(at)
    assert not at.exception
    assert [e.value for e in at.error] == [SERVER_ERROR] and not at.radio and not at.get("image")
