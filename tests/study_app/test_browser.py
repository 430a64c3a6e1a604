"""A real `streamlit run` server driven by Debian's chromium through Playwright, checked against the SQLite rows."""

import time
import urllib.request
from urllib.parse import parse_qs, urlparse

import pytest

from .browser_helpers import Server, answer_screen, fill, image_srcs, rows, settle, wait_screen
from .study_helpers import METHODS, make_stimuli

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(180)]

SCREENS = 4 + 1  # the demo built from these stimuli: 4 items (2 faces x 2 expressions) + 1 catch trial
VOTES_PER_PARTICIPANT = 4 * 3 + 1


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    srv = Server(root, root / "browser.sqlite", USGAN_STUDY_DEMO="1",
                 USGAN_STUDY_DEMO_DIR=str(make_stimuli(root / "demo", expressions=("happy", "sad"))))
    srv.start()
    yield srv
    srv.stop()


def participant_of(page) -> str:
    return parse_qs(urlparse(page.url).query)["pid"][0]


def start_session(page, server) -> str:
    page.goto(server.base)
    page.get_by_text("I have read the information").click()
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("heading", name="Instructions").wait_for()
    settle(page)
    page.get_by_role("button", name="Start").click()
    wait_screen(page, f"Screen 1 of {SCREENS}")
    return participant_of(page)


def assert_no_method_name(page, server) -> None:
    """Nothing a participant's browser holds names a method: DOM, requested URLs, image URLs and bytes."""
    needles = [m.lower() for m in METHODS]
    texts = [page.content(), page.evaluate("document.documentElement.outerHTML"), *page.requested]
    for src in image_srcs(page):
        texts.append(src)
        body = page.request.get(src if src.startswith("http") else server.base + src).body()
        assert not any(n.encode() in body.lower() for n in needles)
    for text in texts:
        assert not any(n in text.lower() for n in needles)


def test_participant_session_stores_what_was_clicked_and_leaks_no_method(page, server):
    pid = start_session(page, server)
    plain = {0: 0, 1: 1, 2: 3}
    for number in range(1, SCREENS + 1):
        wait_screen(page, f"Screen {number} of {SCREENS}")
        assert_no_method_name(page, server)
        answer_screen(page, number, SCREENS, plain)
    page.get_by_text("All your answers are saved.").wait_for()
    code = page.locator('[data-testid="stCode"]')
    code.wait_for()
    assert "DEMO-DONE" in code.inner_text()
    final = page.content().lower()
    assert not any(m.lower() in final for m in METHODS)
    got = rows(server, "SELECT question, position, is_catch, catch_passed FROM votes_long WHERE participant_id = ?",
               pid)
    assert len(got) == VOTES_PER_PARTICIPANT
    for question, position, is_catch, passed in got:
        if is_catch:
            assert question == "identity" and passed == 1
        else:
            assert position == plain[("realism", "expression", "identity").index(question)]
    assert rows(server, "SELECT finished_at IS NOT NULL FROM participants WHERE public_id = ?", pid) == [(1,)]


def test_refresh_resumes_at_the_same_trial(page, server):
    pid = start_session(page, server)
    answer_screen(page, 1, SCREENS, {0: 1, 1: 1, 2: 1})
    answer_screen(page, 2, SCREENS, {0: 2, 1: 2, 2: 2})
    before = image_srcs(page)
    page.reload()
    wait_screen(page, f"Screen 3 of {SCREENS}")
    assert image_srcs(page) == before and participant_of(page) == pid
    assert rows(server, "SELECT COUNT(*) FROM participants WHERE public_id = ?", pid) == [(1,)]


def test_double_click_on_submit_stores_one_vote(page, server):
    pid = start_session(page, server)
    if page.locator('[data-testid="stRadio"]').count() == 1:
        pytest.fail("screen 1 is never a catch trial")
    fill(page, {0: 0, 1: 0, 2: 0})
    page.get_by_role("button", name="Submit and continue").dblclick()
    wait_screen(page, f"Screen 2 of {SCREENS}")
    time.sleep(1.5)  # let a second submission, if any was sent, reach the server and finish
    assert page.get_by_text(f"Screen 2 of {SCREENS}").count() == 1
    got = rows(server, "SELECT question, COUNT(*) FROM votes_long WHERE participant_id = ? GROUP BY question", pid)
    assert got == [("expression", 1), ("identity", 1), ("realism", 1)]


def test_admin_page_refuses_without_secret(page, server):
    page.goto(server.base + "/admin")
    wait_screen(page, "The admin page is disabled")
    html = page.content()
    assert "Participants" not in html and "Download votes" not in html
    assert page.locator('[data-testid="stDataFrame"]').count() == 0


def test_hostile_url_parameters_are_refused_inert(page, server):
    before = rows(server, "SELECT COUNT(*) FROM participants")
    payload = "<script>alert(document.domain)</script>"
    page.goto(server.base + "/?PROLIFIC_PID=" + urllib.request.quote(payload))
    page.get_by_text("This study link is not valid").wait_for()
    page.goto(server.base + "/?pid=" + "A" * 4000)
    page.get_by_text("This study link is not valid").wait_for()
    time.sleep(0.5)
    assert page.dialogs == []
    assert "<script>alert" not in page.content()
    assert rows(server, "SELECT COUNT(*) FROM participants") == before


def test_server_sigkill_mid_study_loses_no_acknowledged_vote(page, server):
    pid = start_session(page, server)
    answer_screen(page, 1, SCREENS, {0: 3, 1: 3, 2: 3})
    answer_screen(page, 2, SCREENS, {0: 3, 1: 3, 2: 3})  # acknowledged: screen 3 is on display
    # Screen 3: submit, then kill the server at once, whether or not the write has landed.
    srcs = image_srcs(page)
    catch = page.locator('[data-testid="stRadio"]').count() == 1
    fill(page, {0: srcs[1:].index(srcs[0])} if catch else {0: 3, 1: 3, 2: 3})
    page.get_by_role("button", name="Submit and continue").click()
    server.sigkill()
    server.start()
    page.reload()
    wait_screen(page, f"of {SCREENS}")
    per_trial = rows(server, "SELECT t.is_catch, COUNT(v.id) FROM trials t JOIN participants p ON p.id = "
                     "t.participant_id LEFT JOIN votes v ON v.trial_id = t.id WHERE p.public_id = ? "
                     "GROUP BY t.id ORDER BY t.ordinal", pid)
    full = [1 if is_catch else 3 for is_catch, _ in per_trial]
    counts = [c for _, c in per_trial]
    assert counts[:2] == full[:2]  # both acknowledged trials survived
    assert counts[2] in (0, full[2])  # the in-flight one: all of it or none of it, never half
    assert sum(counts[3:]) == 0
    resumed = 4 if counts[2] else 3
    wait_screen(page, f"Screen {resumed} of {SCREENS}")
