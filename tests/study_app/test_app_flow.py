"""The participant and admin pages, driven through Streamlit's AppTest against real SQLite files."""

import sqlite3
import threading
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from study_app.db import StudyDB
from study_app.demo import ensure_demo_study
from study_app.routing import INVALID_LINK

from .study_helpers import (ADMIN, METHODS, answer, assert_no_method_names, consent_and_start, make_stimuli, new_app,
                            proto_texts, screen_text)


@pytest.fixture
def app_env(monkeypatch, tmp_path, stimuli):
    """A fresh database; the demo study (asked for) is built from the test stimuli on the first request."""
    db_path = tmp_path / "app.sqlite"
    monkeypatch.setenv("USGAN_STUDY_DB", str(db_path))
    monkeypatch.setenv("USGAN_STUDY_DEMO", "1")
    monkeypatch.setenv("USGAN_STUDY_DEMO_DIR", str(stimuli))
    monkeypatch.delenv("USGAN_STUDY_NAME", raising=False)
    monkeypatch.delenv("USGAN_STUDY_ADMIN_SECRET", raising=False)
    return db_path


def test_full_session_stores_votes_and_shows_code_last(app_env):
    at = new_app()
    pid = at.query_params["pid"]
    assert pid and not at.exception
    assert_no_method_names(at)
    consent_and_start(at)
    seen = []
    while at.radio:
        assert_no_method_names(at)
        assert at.subheader[0].value.startswith("Target expression: ")
        assert len(at.columns) == 2 + len(METHODS)
        urls = [img.url for el in at.get("image") for img in el.proto.imgs]
        assert len(urls) == 1 + len(METHODS) and all(u.endswith(".png") for u in urls)
        seen.append(screen_text(at))
        catch = len(at.radio) == 1
        # A catch trial's instruction is its question's own label; no banner above an unchanged question.
        assert ("exactly the same as the input face" in at.radio[0].label) == catch and not at.warning
        # Nothing is finished until the last answer is stored.
        assert not at.code
        answer(at, 0)
    assert seen == [f"Screen {i} of 7" for i in range(1, 8)]  # 6 demo trials + 1 catch
    assert at.title[0].value == "Thank you!" and at.code[0].value == "DEMO-DONE"
    assert not at.get("link_button")  # no platform id, no redirect configured
    con = sqlite3.connect(app_env)
    assert con.execute("SELECT COUNT(*), COUNT(DISTINCT participant_id) FROM votes_long").fetchone() == (19, 1)
    assert con.execute("SELECT participant_id FROM votes_long LIMIT 1").fetchone() == (pid,)
    assert con.execute("SELECT finished_at IS NOT NULL FROM participants").fetchone() == (1,)


def test_refresh_resumes_at_the_same_trial(app_env):
    at = consent_and_start(new_app())
    pid = at.query_params["pid"]
    answer(at)
    answer(at)
    before = (screen_text(at), [r.key for r in at.radio])
    again = new_app(pid=pid)  # a refresh: new session state, same URL
    assert (screen_text(again), [r.key for r in again.radio]) == before
    assert screen_text(again) == "Screen 3 of 7"
    con = sqlite3.connect(app_env)
    assert con.execute("SELECT COUNT(*) FROM participants").fetchone() == (1,)


def test_unanswered_question_stores_nothing(app_env):
    at = consent_and_start(new_app())
    at.radio[0].set_value(1)
    at.button[0].click().run()
    assert "answer every question" in at.warning[0].value
    assert screen_text(at) == "Screen 1 of 7"
    assert sqlite3.connect(app_env).execute("SELECT COUNT(*) FROM votes").fetchone() == (0,)


HOSTILE = [
    {"PROLIFIC_PID": "<script>alert(1)</script>"},
    {"pid": "x" * 5000},
    {"pid": "\"><img src=x onerror=alert(1)>"},
    {"STUDY_ID": "ok", "SESSION_ID": "javascript:alert(1)"},
    {"PROLIFIC_PID": "a b"},
    {"study": "<b>demo</b>"},
    {"study": "demo+1"},
    {"study": "no-such-study"},
]


@pytest.mark.parametrize("params", HOSTILE)
def test_hostile_url_parameters_refused_never_rendered(app_env, params):
    StudyDB(app_env).dispose()  # the schema exists, so an empty participants table means nothing was stored
    at = new_app(**params)
    assert not at.exception
    assert [e.value for e in at.error] == [INVALID_LINK]
    assert not at.checkbox and not at.button
    blob = proto_texts(at)
    for value in params.values():
        assert value not in blob
    assert "<script" not in blob and "onerror" not in blob
    con = sqlite3.connect(app_env)
    assert con.execute("SELECT COUNT(*) FROM participants").fetchone() == (0,)


def test_admin_refuses_without_secret(app_env, monkeypatch):
    at = AppTest.from_file(ADMIN, default_timeout=60).run()
    assert "disabled" in at.error[0].value
    assert not at.dataframe and not at.text_input and not at.get("download_button")

    monkeypatch.setenv("USGAN_STUDY_ADMIN_SECRET", "s3cret-admin")
    at = AppTest.from_file(ADMIN, default_timeout=60).run()
    assert at.text_input[0].proto.type == at.text_input[0].proto.PASSWORD
    at.text_input[0].input("wrong")
    at.button[0].click().run()
    assert at.error[0].value == "Wrong secret."
    assert not at.dataframe and not at.metric and not at.get("download_button")


def test_admin_with_secret_shows_progress_participants_export(app_env, monkeypatch):
    # One participant finishes, choosing image 3 everywhere: a wrong answer on the demo's one catch trial
    # (its copy sits at position 0 for the first slot), so the demo's rule (exclude after 1) excludes them.
    at = consent_and_start(new_app())
    while at.radio:
        answer(at, 2)
    at = AppTest.from_file(ADMIN, default_timeout=60)
    at.secrets["admin_secret"] = "from-secrets-toml"
    at.run()
    at.text_input[0].input("from-secrets-toml")
    at.button[0].click().run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Participants"] == "1" and metrics["Votes"] == "19" and metrics["Finished"] == "1"
    assert metrics["Excluded (failed checks)"] == "1"
    assert len(at.dataframe) >= 3
    items = at.dataframe[0].value
    assert items["answered"].sum() == 6
    download = at.get("download_button")
    assert [d.proto.url.endswith(".csv") for d in download] == [True, True]
    assert "the study's own, exclude after 1 failed checks" in at.caption[-1].value
    at.toggle[0].set_value(True).run()
    assert not at.exception and not at.get("image")  # the study's rule leaves no votes to chart
    assert any("no votes left" in i.value for i in at.info)
    at.checkbox(key="admin_override").check().run()
    at.number_input(key="admin_max_failed").set_value(0).run()
    assert "Override in use: exclude after 0 failed checks (the study's rule is 1)" in at.warning[0].value
    chart = at.get("image")
    assert len(chart) == 1 and chart[0].proto.imgs[0].url.endswith(".png")
    table = at.dataframe[-1].value
    assert set(table["method"]) == set(METHODS) and set(table["question"]) == {"realism", "expression",
                                                                                 "identity"}


def test_demo_built_once_under_concurrent_first_requests(tmp_path, monkeypatch, stimuli):
    monkeypatch.setenv("USGAN_STUDY_DEMO_DIR", str(stimuli))
    monkeypatch.delenv("USGAN_STUDY_NAME", raising=False)
    dbs = [StudyDB(tmp_path / "race.sqlite") for _ in range(2)]  # two engine sets, as two servers would have
    results, barrier = [], threading.Barrier(8)

    def first_request(k):
        barrier.wait()
        results.append(ensure_demo_study(dbs[k % 2]))

    threads = [threading.Thread(target=first_request, args=(k,)) for k in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(set(results)) == 1 and results[0] is not None
    con = sqlite3.connect(tmp_path / "race.sqlite")
    assert con.execute("SELECT COUNT(*) FROM studies").fetchone() == (1,)
    n_files = len(list((tmp_path / "studies" / "demo" / "images").iterdir()))
    assert n_files == con.execute("SELECT (SELECT COUNT(*) FROM candidates) + COUNT(DISTINCT input_token) "
                                  "FROM items").fetchone()[0]


def test_no_study_and_no_demo_says_how_to_build(tmp_path, monkeypatch):
    monkeypatch.setenv("USGAN_STUDY_DB", str(tmp_path / "empty.sqlite"))
    monkeypatch.setenv("USGAN_STUDY_DEMO", "1")
    monkeypatch.setenv("USGAN_STUDY_DEMO_DIR", str(tmp_path / "nothing-here"))
    at = new_app()
    assert "python -m study_app.build" in at.info[0].value


def test_demo_folder_with_missing_expressions_builds_the_common_ones(tmp_path, monkeypatch):
    root = make_stimuli(tmp_path / "demo", faces=("f1",), expressions=("happy", "sad"))
    (root / "methods" / "STGAN" / "f1" / "sad.png").unlink()
    monkeypatch.setenv("USGAN_STUDY_DEMO_DIR", str(root))
    db = StudyDB(tmp_path / "d.sqlite")
    ensure_demo_study(db)
    con = sqlite3.connect(Path(db.path))
    assert con.execute("SELECT key FROM items").fetchall() == [("f1:happy",)]


def test_committed_demo_stimuli_build_a_playable_study(tmp_path, monkeypatch):
    from study_app.settings import DEMO_STIMULI_DIR
    assert (DEMO_STIMULI_DIR / "inputs").is_dir(), "study_app/demo_stimuli is committed with the app"
    monkeypatch.delenv("USGAN_STUDY_DEMO_DIR", raising=False)
    monkeypatch.delenv("USGAN_STUDY_NAME", raising=False)
    monkeypatch.setenv("USGAN_STUDY_DEMO", "1")
    monkeypatch.setenv("USGAN_STUDY_DB", str(tmp_path / "fresh.sqlite"))
    at = consent_and_start(new_app())
    assert at.radio and screen_text(at).startswith("Screen 1 of ")
    con = sqlite3.connect(tmp_path / "fresh.sqlite")
    assert con.execute("SELECT name FROM studies").fetchall() == [("demo",)]
    assert con.execute("SELECT COUNT(DISTINCT method) FROM methods").fetchone()[0] >= 2
