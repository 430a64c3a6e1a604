"""A Prolific study in Chromium: ids checked before consent, one participation per PID, the study's own rule
excluding in the app and in the analysis, and a missing stimulus that shows participants one plain sentence."""

import json
import os
import subprocess
import sys
import urllib.parse

import pytest

from study_app.build import build_study
from study_app.db import StudyDB
from study_app.routing import INVALID_LINK
from study_app.settings import REPO_ROOT, SERVER_ERROR

from .browser_helpers import Server, answer_screen, rows, settle, wait_screen
from .study_helpers import prolific_fields, spec_for

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(240)]

STUDY = "0123456789abcdef01234567"
SCREENS = 3 + 2  # 3 items + Prolific's 2 catch trials
CONSENT = "I have read the information"


@pytest.fixture(scope="module")
def server(tmp_path_factory, stimuli):
    """No demo: a Prolific study (exclude after 2 failed checks) and an anonymous one whose images we delete."""
    root = tmp_path_factory.mktemp("prolific")
    db = StudyDB(root / "study.sqlite")
    build_study(spec_for(stimuli, root / "main", name="main",
                         **prolific_fields(root, prolific_study_id=STUDY, failed_checks_code="FAILCODE")), db)
    build_study(spec_for(stimuli, root / "fragile", name="fragile"), db)
    db.dispose()
    srv = Server(root, root / "study.sqlite")
    srv.start()
    yield srv
    srv.stop()


def link(server, pid, study=STUDY, session="s1") -> str:
    return server.base + "/?" + urllib.parse.urlencode(dict(PROLIFIC_PID=pid, STUDY_ID=study, SESSION_ID=session))


def take_part(page, server, pid, catch_right=True, session="s1") -> None:
    page.goto(link(server, pid, session=session))
    page.get_by_text(CONSENT).click()
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("heading", name="Instructions").wait_for()
    settle(page)
    page.get_by_role("button", name="Start").click()
    for number in range(1, SCREENS + 1):
        answer_screen(page, number, SCREENS, {0: 0, 1: 1, 2: 2}, catch_right=catch_right)


def test_a_malformed_pid_and_a_wrong_study_id_never_reach_consent(page, server):
    good = "5f8e1c2b9a7d3e4f5a6b7c8d"
    for url in (link(server, good + "_"), link(server, good[:20]), link(server, good, study="f" * 24),
                server.base + "/?" + urllib.parse.urlencode(dict(STUDY_ID=STUDY, SESSION_ID="s"))):
        page.goto(url)
        wait_screen(page, INVALID_LINK)
        assert page.get_by_text(CONSENT).count() == 0
        assert page.get_by_role("button", name="Continue").count() == 0
    assert rows(server, "SELECT COUNT(*) FROM participants") == [(0,)]


def test_a_finished_pid_back_with_a_new_session_sees_its_own_code_and_no_trial(page, server):
    pid = "aaaaaaaaaaaaaaaaaaaaaaa1"
    take_part(page, server, pid)
    assert page.locator('[data-testid="stCode"]').inner_text().strip() == "DONE123"
    before = rows(server, "SELECT COUNT(*) FROM trials")
    page.goto(link(server, pid, session="another-session"))
    wait_screen(page, "Thank you!")
    assert page.locator('[data-testid="stCode"]').inner_text().strip() == "DONE123"
    assert page.locator('[data-testid="stRadio"]').count() == 0 and page.get_by_text(CONSENT).count() == 0
    assert page.get_by_role("link", name="Return to the recruitment site").get_attribute("href") == (
        "https://app.prolific.com/submissions/complete?cc=DONE123")
    assert rows(server, "SELECT COUNT(*) FROM trials") == before
    assert rows(server, "SELECT COUNT(*), platform_session_id FROM participants WHERE platform_pid = ?",
                pid) == [(1, "s1")]


def test_failing_the_studys_rule_excludes_in_the_app_and_in_the_analysis(page, server):
    failer, passer = "bbbbbbbbbbbbbbbbbbbbbbb2", "ccccccccccccccccccccccc3"
    take_part(page, server, failer, catch_right=False)
    assert page.locator('[data-testid="stCode"]').inner_text().strip() == "FAILCODE"
    take_part(page, server, passer)
    (failer_id, excluded), = rows(server, "SELECT public_id, excluded FROM participants WHERE platform_pid = ?",
                                  failer)
    assert excluded == 1
    env = {**os.environ, "MPLBACKEND": "Agg"}
    env["PYTHONPATH"] = str(REPO_ROOT)  # this checkout's analysis, whichever an editable install points at
    result = subprocess.run([sys.executable, "analysis/preferences.py", "--db", str(server.db), "--study", "main",
                             "--n-boot", "100", "--format", "json"], cwd=REPO_ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    people = {p["participant_id"]: p for p in report["participants"]}
    assert people[failer_id]["excluded"] and people[failer_id]["reason"] == "failed >= 2 catch trials"
    assert "(the study's rule)" in report["meta"]["exclusion_rule"]
    assert report["meta"]["participants_analysed"] == report["meta"]["participants_total"] - 1


def test_a_deleted_stimulus_shows_participants_no_traceback(page, server):
    page.goto(server.base + "/?study=fragile")
    page.get_by_text(CONSENT).click()
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("heading", name="Instructions").wait_for()
    settle(page)
    for image in (server.db.parent / "fragile" / "images").iterdir():
        image.unlink()
    page.get_by_role("button", name="Start").click()
    wait_screen(page, SERVER_ERROR)
    html, shown = page.content(), page.locator('[data-testid="stApp"]').inner_text()
    for leak in ("Traceback", "FileNotFoundError", "No such file", "sqlite", "Error:"):
        assert leak not in shown
    assert str(server.db.parent) not in html and "/images/" not in html
    assert page.locator('[data-testid="stException"]').count() == 0
    assert "FileNotFoundError" in (server.db.parent / "server.log").read_text()  # the full story is on the server
