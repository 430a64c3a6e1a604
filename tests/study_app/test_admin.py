"""The admin page's brake on guessing, its open / pause / close buttons, and the participants export command."""

import sqlite3

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from study_app import admin_auth, enrolment
from study_app.build import build_study
from study_app.db import StudyDB
from study_app.enrolment import NOT_OPEN
from study_app.reports import main as reports_main
from study_app.settings import CATCH_LABEL

from .study_helpers import ADMIN, answer_all, new_app, spec_for

SECRET = "s3cret-admin"


@pytest.fixture
def built(monkeypatch, tmp_path, stimuli):
    """A database with one anonymous study, the admin secret set, and a fresh guessing brake."""
    path = tmp_path / "admin.sqlite"
    monkeypatch.setenv("USGAN_STUDY_DB", str(path))
    monkeypatch.setenv("USGAN_STUDY_ADMIN_SECRET", SECRET)
    monkeypatch.delenv("USGAN_STUDY_DEMO", raising=False)
    monkeypatch.setattr(admin_auth, "THROTTLE", admin_auth.Throttle(limit=3, clock=lambda: 0.0))  # no guess ever ages
    db = StudyDB(path)
    build_study(spec_for(stimuli, tmp_path / "s", name="s1", failed_checks_code="NOPE"), db)
    yield db
    db.dispose()


def sign_in(secret: str) -> AppTest:
    at = AppTest.from_file(ADMIN, default_timeout=60).run()
    at.text_input[0].input(secret)
    at.button[0].click().run()
    return at


def test_wrong_secrets_are_braked_even_across_sessions(built):
    for _ in range(3):
        assert sign_in("guess").error[0].value == "Wrong secret."
    # A new session (a guesser's next try) is held back, and so is the right secret until the window passes.
    assert sign_in("guess").error[0].value == admin_auth.TOO_MANY
    blocked = sign_in(SECRET)
    assert blocked.error[0].value == admin_auth.TOO_MANY and not blocked.metric


def test_the_brake_forgets_old_failures():
    now = [0.0]
    brake = admin_auth.Throttle(limit=2, window_s=60, clock=lambda: now[0])
    brake.failed()
    now[0] = 30.0
    brake.failed()
    assert brake.blocked()
    now[0] = 61.0  # the first guess has left the window, the second has not
    assert not brake.blocked()
    brake.failed()
    assert brake.blocked()


def test_pause_and_close_from_the_admin_page(built):
    at = sign_in(SECRET)
    assert "Status: open." in at.markdown[0].value and "Places held" in at.markdown[0].value
    assert any("Estimated duration: about 2 minutes (4 screens; pace assumed" in c.value and
               "Withdrawals so far: 0." in c.value for c in at.caption)
    at.button(key="admin_pause").click().run()
    assert "Status: paused." in at.markdown[0].value
    assert new_app(study="s1").info[0].value == NOT_OPEN
    at.button(key="admin_open").click().run()
    assert new_app(study="s1").checkbox
    at.button(key="admin_close").click().run()
    assert "Status: closed." in at.markdown[0].value
    assert not [b for b in at.button if b.key in ("admin_open", "admin_pause")]  # closing is final
    assert new_app(study="s1").info[0].value == NOT_OPEN


def test_participants_csv_for_prolific_approval(built, tmp_path):
    ok = enrolment.enroll(built, 1, "ok", platform_pid="5f8e1c2b9a7d3e4f5a6b7c8d", platform_session_id="s9")
    bad = enrolment.enroll(built, 1, "bad")
    enrolment.enroll(built, 1, "half")
    answer_all(built, ok, pick=lambda t, labels: labels.index(CATCH_LABEL) if t.is_catch else 0)
    answer_all(built, bad, pick=lambda t, labels: (labels.index(CATCH_LABEL) + 1) % 4 if t.is_catch else 0)
    out = tmp_path / "people.csv"
    assert reports_main(["--db", str(built.path), "--study", "s1", "--participants", str(out)]) == 0
    people = pd.read_csv(out, keep_default_na=False).set_index("participant_id")
    # The votes' own key (never the PID) leads; the PID sits beside it for approving on Prolific.
    assert list(people.columns) == ["prolific_pid", "session_id", "started_at", "finished_at", "minutes",
                                    "finished", "status", "failed_checks", "excluded", "code"]
    assert people.loc["ok", ["prolific_pid", "session_id", "finished", "status", "failed_checks", "excluded",
                             "code"]].tolist() == ["5f8e1c2b9a7d3e4f5a6b7c8d", "s9", 1, "finished", 0, 0, "DONE123"]
    assert people.loc["bad", ["failed_checks", "excluded", "code"]].tolist() == [1, 1, "NOPE"]
    assert people.loc["half", ["finished", "status", "code", "finished_at"]].tolist() == [0, "in progress", "", ""]
    voted = set(pd.read_sql_query("SELECT DISTINCT participant_id FROM votes_long", sqlite3.connect(built.path))
                ["participant_id"])
    assert voted == {"ok", "bad"} and voted <= set(people.index)  # one key across both exports
    assert people.loc["bad", "started_at"].endswith("Z")
    assert reports_main(["--db", str(built.path), "--participants", str(out)]) == 2  # which study?
    assert sqlite3.connect(built.path).execute("SELECT COUNT(*) FROM participants").fetchone() == (3,)
