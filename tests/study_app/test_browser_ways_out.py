"""A paid Prolific study in Chromium, one server for every check: declining, a full study and the address limit
send people back to Prolific; a catch trial's question carries its instruction; the server's log holds no PID."""

import re
import urllib.parse

import pytest

from study_app import enrolment, information
from study_app.build import build_study
from study_app.db import StudyDB
from study_app.enrolment import FULL, OVER_LIMIT
from study_app.settings import CATCH_QUESTION_TEXT, SERVER_ERROR

from .browser_helpers import Server, answer_screen, rows, settle, wait_screen
from .study_helpers import prolific_fields, spec_for

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(300)]

STUDIES = {"main": "a" * 24, "full": "b" * 24, "limited": "c" * 24, "fragile": "d" * 24}
SCREENS = 3 + 2  # 3 items + Prolific's 2 catch trials
CONSENT = "I have read the information"
DEBRIEF = "Debrief: the edits came from four methods."
USED_PIDS = []  # every PID a test sends; none may appear in the server's log


@pytest.fixture(scope="module")
def server(tmp_path_factory, stimuli):
    """Four Prolific studies behind a proxy (the client's address read from X-Forwarded-For)."""
    root = tmp_path_factory.mktemp("ways_out")
    (root / "debrief.md").write_text(f"{DEBRIEF}\n")
    db = StudyDB(root / "study.sqlite")
    settings = {"main": dict(debrief=root / "debrief.md"), "full": dict(max_participants=1),
                "limited": dict(enrolments_per_address_per_hour=1), "fragile": {}}
    for name, study in STUDIES.items():
        build_study(spec_for(stimuli, root / name, name=name,
                             **prolific_fields(root, prolific_study_id=study, **settings[name])), db)
    enrolment.enroll(db, 2, "holder", "e" * 24, STUDIES["full"], "s0")  # the full study's one place
    db.dispose()
    # FORWARDED_ALLOW_IPS="": Streamlit's web server trusts no forwarding peer itself, as with a proxy on
    # another machine, so the address comes from the app's own reading of X-Forwarded-For.
    srv = Server(root, root / "study.sqlite", USGAN_STUDY_BEHIND_PROXY="1")
    srv.env["FORWARDED_ALLOW_IPS"] = ""
    srv.start()
    yield srv
    srv.stop()


def open_link(browser, server, study, pid, address=None):
    """A fresh browser (own cookies and storage) on the study's Prolific link, from `address` via the proxy."""
    context = browser.new_context(extra_http_headers={"X-Forwarded-For": address} if address else None)
    page = context.new_page()
    page.set_default_timeout(30_000)
    USED_PIDS.append(pid)
    page.goto(server.base + "/?" + urllib.parse.urlencode(
        dict(PROLIFIC_PID=pid, STUDY_ID=STUDIES[study], SESSION_ID=f"session-{pid[:4]}")))
    return page


def consent(page):
    page.get_by_text(CONSENT).click()
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("heading", name="Instructions").wait_for()
    settle(page)


def test_i_do_not_consent_leads_to_the_return_instruction_and_stores_nothing(browser, server):
    page = open_link(browser, server, "main", "1" * 24)
    page.get_by_role("button", name="I do not consent").click()
    wait_screen(page, information.DECLINED)
    assert page.get_by_text(information.RETURN_ON_PROLIFIC).count() == 1
    assert page.get_by_text(CONSENT).count() == 0
    assert rows(server, "SELECT COUNT(*) FROM participants WHERE platform_pid = ?", "1" * 24) == [(0,)]
    assert rows(server, "SELECT COUNT(*) FROM votes") == [(0,)]
    page.context.close()


def test_a_full_study_tells_a_prolific_participant_to_return(browser, server):
    page = open_link(browser, server, "full", "2" * 24)
    wait_screen(page, FULL)
    assert page.get_by_text(information.RETURN_ON_PROLIFIC).count() == 1
    assert page.get_by_text(CONSENT).count() == 0
    assert rows(server, "SELECT COUNT(*) FROM participants WHERE study_id = 2") == [(1,)]
    page.context.close()


def test_a_catch_trials_question_label_carries_the_instruction(browser, server):
    page = open_link(browser, server, "main", "3" * 24)
    consent(page)
    page.get_by_role("button", name="Start").click()
    labels = []
    for number in range(1, SCREENS + 1):
        wait_screen(page, f"Screen {number} of {SCREENS}")
        radios = page.locator('[data-testid="stRadio"]')
        radios.first.wait_for()
        if radios.count() == 1:
            labels.append(radios.first.locator('[data-testid="stWidgetLabel"]').inner_text().strip())
            assert page.locator('[data-testid="stAlert"]').count() == 0  # no banner above the question
        answer_screen(page, number, SCREENS, {0: 0, 1: 1, 2: 2})
    assert labels == [CATCH_QUESTION_TEXT["identity"]] * 2
    page.locator('[data-testid="stCode"]').wait_for()
    assert page.get_by_text(DEBRIEF).count() == 1  # the study's own debrief, beside the code
    page.context.close()


def test_a_participant_over_the_address_limit_sees_the_neutral_sentence(browser, server):
    first = open_link(browser, server, "limited", "4" * 24, address="203.0.113.7")
    consent(first)
    first.context.close()
    again = open_link(browser, server, "limited", "5" * 24, address="203.0.113.7")
    wait_screen(again, OVER_LIMIT)
    assert again.get_by_text(information.RETURN_ON_PROLIFIC).count() == 1 and again.get_by_text(CONSENT).count() == 0
    again.context.close()
    elsewhere = open_link(browser, server, "limited", "6" * 24, address="198.51.100.4")
    wait_screen(elsewhere, CONSENT)
    elsewhere.context.close()
    assert rows(server, "SELECT COUNT(*) FROM participants WHERE study_id = 3") == [(1,)]


def test_no_pid_reaches_the_servers_log_even_when_a_page_fails(browser, server):
    page = open_link(browser, server, "fragile", "7" * 24)
    consent(page)
    for image in (server.db.parent / "fragile" / "images").iterdir():
        image.unlink()
    page.get_by_role("button", name="Start").click()
    wait_screen(page, SERVER_ERROR)
    page.context.close()
    log = (server.db.parent / "server.log").read_text()
    assert "FileNotFoundError" in log and "URL parameters: PROLIFIC_PID, SESSION_ID, STUDY_ID" in log
    for pid in USED_PIDS:
        assert pid not in log.lower()
    assert not re.search(r"(?<![0-9a-f])[0-9a-f]{24}(?![0-9a-f])", log.lower())
