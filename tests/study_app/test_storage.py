"""Storage: pragmas, the unique vote key, the votes_long contract, catch grading, one participation per platform id."""

import sqlite3
import time
from datetime import datetime

import pytest
from sqlalchemy.exc import IntegrityError

import vote_format

from study_app import enrolment
from study_app import participation as part
from study_app.build import build_study
from study_app.db import VOTES_LONG_COLUMNS, StudyDB
from study_app.models import Vote
from study_app.settings import CATCH_LABEL, QUESTIONS, default_db_path

from .study_helpers import METHODS, answer_all, make_stimuli, spec_for, trial_labels


def test_pragmas_on_every_connection(db):
    with db.write_engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
    with db.read_engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_default_path_follows_env(monkeypatch, tmp_path):
    monkeypatch.delenv("USGAN_STUDY_DB", raising=False)
    assert default_db_path().parts[-2:] == ("var", "study.sqlite")
    monkeypatch.setenv("USGAN_STUDY_DB", str(tmp_path / "x.sqlite"))
    assert default_db_path() == tmp_path / "x.sqlite"


def test_full_participation_gives_exact_long_rows(db, study_id):
    pid = enrolment.enroll(db, study_id, "p-1")
    answer_all(db, pid, pick=lambda t, labels: labels.index(CATCH_LABEL) if t.is_catch else 1)
    con = sqlite3.connect(db.path)
    cur = con.execute("SELECT * FROM votes_long")
    assert tuple(d[0] for d in cur.description) == VOTES_LONG_COLUMNS
    rows = [dict(zip(VOTES_LONG_COLUMNS, r)) for r in cur.fetchall()]
    assert len(rows) == 3 * 3 + 1  # 3 ordinary trials x 3 questions + 1 catch trial x 1 question
    catch = [r for r in rows if r["is_catch"] == 1]
    assert len(catch) == 1 and catch[0]["method"] == CATCH_LABEL and catch[0]["catch_passed"] == 1
    assert catch[0]["question"] == "identity"
    for r in rows:
        assert r["participant_id"] == "p-1" and r["study_id"] == "test"
        assert r["item_id"] == f"{r['face_id']}:{r['expression']}"
        assert r["question"] in QUESTIONS and isinstance(r["response_ms"], int) and r["response_ms"] >= 0
        assert r["shown_at"].endswith("Z") and "T" in r["shown_at"] and r["answered_at"] >= r["shown_at"]
        if not r["is_catch"]:
            assert r["catch_passed"] is None and r["position"] == 1 and r["method"] != CATCH_LABEL
    # The declared methods, for readers that want zero-vote methods too.
    assert {m for (m,) in con.execute("SELECT method FROM methods WHERE study_id = 'test'")} == {
        "GANimation", "STGAN", "StarGAN", "USGAN"}


def test_layout_stored_and_vote_points_at_shown_candidate(db, study_id):
    pid = enrolment.enroll(db, study_id, "p-2")
    prog = part.progress(db, pid)
    labels = trial_labels(db, prog.trial.trial_id)
    part.submit(db, pid, prog.trial.trial_id, {"realism": 3, "expression": 0, "identity": 2})
    con = sqlite3.connect(db.path)
    got = dict(con.execute("SELECT question, method FROM votes_long").fetchall())
    assert got == {"realism": labels[3], "expression": labels[0], "identity": labels[2]}


def test_repeated_submit_is_a_no_op_and_unique_key_enforced(db, study_id):
    pid = enrolment.enroll(db, study_id, "p-3")
    trial = part.progress(db, pid).trial
    first = part.submit(db, pid, trial.trial_id, dict.fromkeys(QUESTIONS, 0))
    again = part.submit(db, pid, trial.trial_id, dict.fromkeys(QUESTIONS, 2))
    assert first.stored and not again.stored
    con = sqlite3.connect(db.path)
    assert con.execute("SELECT COUNT(*), MAX(position) FROM votes").fetchone() == (3, 0)
    # The key itself holds even for a writer that bypasses submit().
    with db.read() as s:
        v = s.query(Vote).first()
        key = dict(participant_id=v.participant_id, trial_id=v.trial_id, candidate_id=v.candidate_id)
    with pytest.raises(IntegrityError), db.write() as s:
        s.add(Vote(**key, question="realism", position=1, response_ms=1))
    with pytest.raises(IntegrityError), db.write() as s:  # foreign keys are enforced
        s.add(Vote(**{**key, "participant_id": 999}, question="realism", position=1, response_ms=1))


def test_submit_validates_answers_and_ownership(db, study_id):
    a = enrolment.enroll(db, study_id, "a")
    b = enrolment.enroll(db, study_id, "b")
    trial = part.progress(db, a).trial
    with pytest.raises(ValueError):
        part.submit(db, a, trial.trial_id, {"realism": 0})
    with pytest.raises(ValueError):
        part.submit(db, a, trial.trial_id, dict.fromkeys(QUESTIONS, 4))
    with pytest.raises(LookupError):
        part.submit(db, b, trial.trial_id, dict.fromkeys(QUESTIONS, 0))
    assert sqlite3.connect(db.path).execute("SELECT COUNT(*) FROM votes").fetchone() == (0,)


def test_one_participation_per_platform_id(db, study_id):
    first = enrolment.enroll(db, study_id, "x1", platform_pid="5f1d0a", platform_session_id="s1")
    again = enrolment.enroll(db, study_id, "x2", platform_pid="5f1d0a", platform_session_id="s2")
    assert first == again
    assert enrolment.find_participant(db, study_id, None, "5f1d0a") == first
    other = enrolment.enroll(db, study_id, "x3", platform_pid="77aa")
    assert other != first
    con = sqlite3.connect(db.path)
    assert con.execute("SELECT COUNT(*) FROM participants").fetchone() == (2,)
    assert con.execute('SELECT "index" FROM participants ORDER BY id').fetchall() == [(0,), (1,)]
    with pytest.raises(ValueError):
        enrolment.enroll(db, study_id, "<script>", platform_pid=None)


def test_failed_checks_exclude_and_pick_the_failure_code(db, stimuli, tmp_path):
    sid = build_study(spec_for(stimuli, tmp_path / "o2", name="strict", catch_trials=2,
                               exclude_after_failed_checks=2, failed_checks_code="FAILED1"), db)
    passer = enrolment.enroll(db, sid, "good", platform_pid="aa")
    failer = enrolment.enroll(db, sid, "bad")
    answer_all(db, passer, pick=lambda t, labels: labels.index(CATCH_LABEL) if t.is_catch else 0)
    end = answer_all(db, failer, pick=lambda t, labels: (labels.index(CATCH_LABEL) + 1) % 4 if t.is_catch else 0)
    assert end.finished and end.excluded
    study = part.load_study(db, sid)
    ok = part.progress(db, passer)
    assert ok.finished and not ok.excluded
    assert part.completion(study, False) == ("DONE123", None)  # an anonymous link without a redirect
    assert part.completion(study, True) == ("FAILED1", None)
    con = sqlite3.connect(db.path)
    fails = con.execute("SELECT participant_id, SUM(1 - catch_passed) FROM votes_long WHERE is_catch = 1 "
                        "GROUP BY participant_id ORDER BY participant_id").fetchall()
    assert fails == [("bad", 2), ("good", 0)]


def test_progress_resumes_from_database(db, study_id):
    pid = enrolment.enroll(db, study_id, "r")
    first = part.progress(db, pid).trial
    part.submit(db, pid, first.trial_id, dict.fromkeys(part.questions_for(first.is_catch), 1))
    # A fresh StudyDB (as after a server restart) sees the same next trial.
    other = StudyDB(db.path)
    nxt = part.progress(other, pid)
    assert nxt.answered == 1 and nxt.trial.ordinal == 1
    other.dispose()


def test_csv_export_matches_the_view(db, study_id, tmp_path):
    import pandas as pd

    from study_app.reports import main as export_main
    pid = enrolment.enroll(db, study_id, "csv")
    answer_all(db, pid, pick=lambda t, labels: 2)
    out = tmp_path / "votes.csv"
    assert export_main(["--db", str(db.path), "--study", "test", "--out", str(out)]) == 0
    frame = pd.read_csv(out, keep_default_na=False)
    assert tuple(frame.columns) == VOTES_LONG_COLUMNS and len(frame) == 10
    catch_cells = set(frame.loc[frame["is_catch"] == 0, "catch_passed"].astype(str))
    assert catch_cells == {""}  # empty, not 0, for ordinary trials
    assert set(frame["position"]) == {2}
    assert export_main(["--db", str(db.path), "--study", "nope", "--out", str(out)]) == 0
    assert pd.read_csv(out).empty and tuple(pd.read_csv(out).columns) == VOTES_LONG_COLUMNS


def test_shown_stamps_the_first_render_and_the_next_trial_waits_for_its_own(db, study_id):
    pid = enrolment.enroll(db, study_id, "t")
    first = part.progress(db, pid).trial
    assert not first.shown
    part.mark_shown(db, first.trial_id)
    con = sqlite3.connect(db.path)
    (stamp,) = con.execute("SELECT shown_at FROM trials WHERE id = ?", (first.trial_id,)).fetchone()
    part.mark_shown(db, first.trial_id)  # a re-render keeps the first stamp
    assert con.execute("SELECT shown_at FROM trials WHERE id = ?", (first.trial_id,)).fetchone() == (stamp,)
    part.submit(db, pid, first.trial_id, dict.fromkeys(QUESTIONS, 0))
    # The next trial's clock has not started: it starts when that trial is rendered, not at this commit.
    second = part.progress(db, pid).trial
    assert not second.shown
    time.sleep(0.5)  # at least this long, however loaded the machine: the two starts cannot be confused
    part.mark_shown(db, second.trial_id)
    part.submit(db, pid, second.trial_id, dict.fromkeys(part.questions_for(second.is_catch), 0))
    answered_first, shown_second, answered_second = (datetime.fromisoformat(t) for (t,) in con.execute(
        "SELECT answered_at FROM trials WHERE id = ? UNION ALL SELECT shown_at FROM trials WHERE id = ? "
        "UNION ALL SELECT answered_at FROM trials WHERE id = ?", (first.trial_id, second.trial_id, second.trial_id)))
    assert (shown_second - answered_first).total_seconds() >= 0.5
    (ms,) = con.execute("SELECT DISTINCT response_ms FROM votes WHERE trial_id = ?", (second.trial_id,)).fetchone()
    # From its own render, not from the previous answer at least 500 ms earlier.
    assert ms == int((answered_second - shown_second).total_seconds() * 1000)


def test_a_method_that_returns_its_input_also_passes_a_catch(tmp_path):
    import shutil

    root = make_stimuli(tmp_path / "st", faces=("f1",), expressions=("happy", "sad"))
    for expr in ("happy", "sad"):  # "USGAN" here is an identity mapping, like the demo's "unchanged"
        shutil.copy(root / "inputs" / "f1.png", root / "methods" / "USGAN" / "f1" / f"{expr}.png")
    db = StudyDB(tmp_path / "db.sqlite")
    sid = build_study(spec_for(root, tmp_path / "o", expressions=("happy", "sad"), trials_per_participant=2,
                               catch_trials=1), db)
    con = sqlite3.connect(db.path)
    flagged = dict(con.execute("SELECT label, MAX(matches_input) FROM candidates GROUP BY label").fetchall())
    assert flagged == {**dict.fromkeys(METHODS, 0), "USGAN": 1, CATCH_LABEL: 1}
    for n in range(8):  # enough participants that some catch trial shows both the copy and USGAN
        pid = enrolment.enroll(db, sid, f"u{n}")
        answer_all(db, pid, pick=lambda t, labels: labels.index("USGAN") if "USGAN" in labels and t.is_catch
                   else labels.index(CATCH_LABEL) if t.is_catch else 0)
    rows = con.execute("SELECT method, catch_passed FROM votes_long WHERE is_catch = 1").fetchall()
    assert ("USGAN", 1) in rows and all(passed == 1 for _, passed in rows)
    assert con.execute("SELECT MAX(catch_failures) FROM participants").fetchone() == (0,)


def test_older_database_gains_the_new_column(tmp_path):
    path = tmp_path / "old.sqlite"
    StudyDB(path).dispose()
    con = sqlite3.connect(path)
    con.executescript("DROP VIEW votes_long; ALTER TABLE candidates DROP COLUMN matches_input;")
    con.close()
    StudyDB(path).dispose()
    con = sqlite3.connect(path)
    assert "matches_input" in {r[1] for r in con.execute("PRAGMA table_info(candidates)")}
    assert "catch_passed" in {d[0] for d in con.execute("SELECT * FROM votes_long").description}


def test_a_database_the_app_wrote_validates_as_the_long_vote_format(db, study_id):
    """The contract both products import: the app's view has its columns and the analysis reads it as is."""
    from analysis.votes import apply_exclusions, read_db, validate
    pid = enrolment.enroll(db, study_id, "p-1")
    answer_all(db, pid, pick=lambda t, labels: labels.index(CATCH_LABEL) if t.is_catch else 0)
    raw, declared = read_db(db.path)
    assert tuple(raw.columns) == vote_format.COLUMNS and not vote_format.missing_columns(raw.columns)
    votes = validate(raw, str(db.path))
    assert set(votes["question"]) <= set(vote_format.QUESTIONS)
    assert set(votes.loc[votes["is_catch"] == 1, "method"]) == {vote_format.CATCH_LABEL}
    assert sorted(m for _, m in declared) == ["GANimation", "STGAN", "StarGAN", "USGAN"]
    kept, people, repeats = apply_exclusions(votes)
    assert len(kept) == 3 * 3 and repeats == 0 and not people["excluded"].any()
