"""Withdrawal on request (votes gone, others untouched, balance kept, analysis runs) and backups that restore."""

import sqlite3
import subprocess
import sys

import pytest

from study_app import enrolment
from study_app.backup import backup
from study_app.build import build_study
from study_app.db import StudyDB
from study_app.settings import CATCH_LABEL, REPO_ROOT
from study_app.withdraw import withdraw

from .study_helpers import age, answer_all, prolific_fields, spec_for

STUDY_ID = "0123456789abcdef01234567"
PIDS = ("aaaaaaaaaaaaaaaaaaaaaaa1", "bbbbbbbbbbbbbbbbbbbbbbb2", "ccccccccccccccccccccccc3")


def right(trial, labels):
    return labels.index(CATCH_LABEL) if trial.is_catch else trial.ordinal % 4


def run(*args):
    return subprocess.run([sys.executable, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(REPO_ROOT), "MPLBACKEND": "Agg", "PATH": ""})


def votes_by(db_path):
    con = sqlite3.connect(db_path)
    try:
        return {key: con.execute("SELECT * FROM votes_long WHERE participant_id = ? ORDER BY answered_at, question",
                                 (key,)).fetchall()
                for (key,) in con.execute("SELECT participant_id FROM participant_summary")}
    finally:
        con.close()


@pytest.fixture
def three_finished(db, stimuli, tmp_path):
    """A Prolific study where three PIDs finished; returns (study id, their participant keys)."""
    sid = build_study(spec_for(stimuli, tmp_path / "s", name="s1",
                               **prolific_fields(tmp_path, prolific_study_id=STUDY_ID)), db)
    keys = []
    for k, pid in enumerate(PIDS):
        person = enrolment.enroll(db, sid, f"key{k}", pid, STUDY_ID, f"session{k}")
        answer_all(db, person, pick=right)
        keys.append(f"key{k}")
    return sid, keys


def test_withdraw_deletes_one_participant_keeps_the_others_and_the_analysis_runs(db, three_finished):
    sid, keys = three_finished
    before = votes_by(db.path)
    assert all(len(before[k]) == 3 * 3 + 2 for k in keys)
    done = run("-m", "study_app.withdraw", "--db", str(db.path), "--study", "s1", "--pid", PIDS[2].upper())
    assert done.returncode == 0, done.stderr
    assert "11 votes deleted (finished); its slot is free for the next newcomer" in done.stdout
    assert PIDS[2] not in done.stdout + done.stderr and PIDS[2].upper() not in done.stdout + done.stderr
    after = votes_by(db.path)
    assert set(after) == set(keys[:2]) and {k: after[k] for k in keys[:2]} == {k: before[k] for k in keys[:2]}
    con = sqlite3.connect(db.path)
    assert con.execute("SELECT COUNT(*) FROM trials t JOIN participants p ON p.id = t.participant_id "
                       "WHERE p.public_id = 'key2'").fetchone() == (0,)
    logged = con.execute("SELECT * FROM withdrawals").fetchall()
    assert len(logged) == 1 and not any(PIDS[2] in str(v) or v == "key2" for v in logged[0])
    con.close()
    # secure_delete and the checkpoint: the id no longer sits in the file's free space or its WAL.
    raw = db.path.read_bytes() + (db.path.with_name(db.path.name + "-wal").read_bytes()
                                  if db.path.with_name(db.path.name + "-wal").exists() else b"")
    assert PIDS[2].encode() not in raw and PIDS[0].encode() in raw
    # The freed slot goes to the next newcomer, with a new index: indices are never reused.
    enrolment.enroll(db, sid, "newcomer", "ddddddddddddddddddddddd4", STUDY_ID, "s9")
    assert sqlite3.connect(db.path).execute("SELECT slot, \"index\" FROM participants WHERE public_id = "
                                            "'newcomer'").fetchone() == (2, 3)
    report = run("analysis/preferences.py", "--db", str(db.path), "--study", "s1", "--n-boot", "50")
    assert report.returncode == 0, report.stderr
    assert "participants: 2 analysed of 2" in report.stdout
    again = run("-m", "study_app.withdraw", "--db", str(db.path), "--study", "s1", "--pid", PIDS[2])
    assert again.returncode == 1 and again.stderr.count("\n") == 1 and PIDS[2] not in again.stderr
    assert "no participant with that id in study 's1'; nothing was deleted" in again.stderr


def test_a_slot_held_twice_is_not_freed_by_withdrawing_one_holder(db, stimuli, tmp_path):
    sid = build_study(spec_for(stimuli, tmp_path / "s", slot_timeout_minutes=30), db)
    back = enrolment.enroll(db, sid, "back")
    age(db, 40)
    answer_all(db, enrolment.enroll(db, sid, "newer"), pick=right)  # took the quiet participant's slot 0
    answer_all(db, back, pick=right)  # ... who came back and started before the newcomer finished
    con = sqlite3.connect(db.path)
    assert con.execute("SELECT public_id, slot FROM participants ORDER BY public_id").fetchall() == [
        ("back", 0), ("newer", 0)]
    done = withdraw(db, "test", "back")
    assert (done.finished, done.slot_freed, done.votes_deleted) == (True, False, 3 * 3 + 1)
    enrolment.enroll(db, sid, "next")
    assert con.execute("SELECT slot FROM participants WHERE public_id = 'next'").fetchone() == (1,)


def test_rotated_backups_restore_with_every_vote(db, three_finished, tmp_path):
    sid, keys = three_finished
    half = enrolment.enroll(db, sid, "half", "eeeeeeeeeeeeeeeeeeeeeee5", STUDY_ID, "s5")
    answer_all(db, half, pick=right)
    folder = tmp_path / "backups"
    made = [backup(db.path, folder, keep=2)[0] for _ in range(2)]
    out = run("-m", "study_app.backup", "--db", str(db.path), "--to", str(folder), "--keep", "2")
    assert out.returncode == 0, out.stderr
    kept = sorted(folder.glob("*.backup"))
    assert len(kept) == 2 and made[0] not in kept and made[1] in kept  # rotated: the oldest went
    expected = votes_by(db.path)
    assert sum(map(len, expected.values())) == 4 * 11 and f"({4 * 11} votes)" in out.stdout
    # Restore over the live file (server stopped): the current database is moved aside, never lost.
    db.dispose()
    restored = run("-m", "study_app.backup", "--db", str(db.path), "--restore", str(kept[-1]))
    assert restored.returncode == 0, restored.stderr
    assert f"({4 * 11} votes); the previous database is now" in restored.stdout
    assert votes_by(db.path) == expected
    assert len(list(tmp_path.glob("study.sqlite.before-restore-*"))) == 1
    fresh = StudyDB(db.path)  # the app opens it as it is
    try:
        assert enrolment.find_participant(fresh, sid, platform_pid=PIDS[0]) is not None
    finally:
        fresh.dispose()
    broken = tmp_path / "broken.backup"
    broken.write_bytes(b"not a database")
    bad = run("-m", "study_app.backup", "--db", str(tmp_path / "x.sqlite"), "--restore", str(broken))
    assert bad.returncode == 1 and bad.stderr.startswith("error: ") and bad.stderr.count("\n") == 1
    assert not (tmp_path / "x.sqlite").exists()
