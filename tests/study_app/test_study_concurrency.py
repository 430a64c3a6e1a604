"""50 simultaneous participants lose and duplicate nothing; SIGKILL of a writer loses no acknowledged vote."""

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from study_app import enrolment
from study_app import participation as part
from study_app.settings import QUESTIONS, REPO_ROOT

HERE = Path(__file__).resolve().parent


def run_participant(db, study_id, n, barrier):
    barrier.wait()  # everyone starts together
    pid = enrolment.enroll(db, study_id, f"c{n}")
    submitted = 0
    while (trial := part.progress(db, pid).trial) is not None:
        if not trial.shown:
            part.mark_shown(db, trial.trial_id)
        answers = dict.fromkeys(part.questions_for(trial.is_catch), n % 4)
        part.submit(db, pid, trial.trial_id, answers)
        part.submit(db, pid, trial.trial_id, answers)  # the double click
        submitted += 1
    return submitted


def test_fifty_simultaneous_participants(db, study_id):
    n = 50
    barrier = threading.Barrier(n)
    with ThreadPoolExecutor(n) as pool:
        done = list(pool.map(lambda i: run_participant(db, study_id, i, barrier), range(n)))
    assert done == [4] * n
    con = sqlite3.connect(db.path)
    assert con.execute("SELECT COUNT(*), COUNT(DISTINCT public_id), COUNT(DISTINCT \"index\"), MAX(\"index\") "
                       "FROM participants").fetchone() == (n, n, n, n - 1)
    assert con.execute("SELECT COUNT(*) FROM votes").fetchone() == (n * (3 * 3 + 1),)
    assert con.execute("SELECT COUNT(*) FROM votes_long").fetchone() == (n * (3 * 3 + 1),)
    assert con.execute("SELECT COUNT(*) FROM (SELECT 1 FROM votes GROUP BY participant_id, trial_id, question "
                       "HAVING COUNT(*) > 1)").fetchone() == (0,)
    assert con.execute("SELECT COUNT(*) FROM trials WHERE answered_at IS NULL").fetchone() == (0,)
    assert con.execute("SELECT COUNT(*) FROM participants WHERE finished_at IS NULL").fetchone() == (0,)
    # Each participant's votes carry the position they chose.
    wrong = con.execute("SELECT COUNT(*) FROM votes_long WHERE position != CAST(substr(participant_id, 2) AS "
                        "INTEGER) % 4").fetchone()
    assert wrong == (0,)


def test_racing_duplicate_submits_store_once(db, study_id):
    pid = enrolment.enroll(db, study_id, "racer")
    trial = part.progress(db, pid).trial
    barrier = threading.Barrier(20)

    def go(k):
        barrier.wait()
        return part.submit(db, pid, trial.trial_id, dict.fromkeys(QUESTIONS, k % 4)).stored

    with ThreadPoolExecutor(20) as pool:
        stored = list(pool.map(go, range(20)))
    assert stored.count(True) == 1
    con = sqlite3.connect(db.path)
    assert con.execute("SELECT COUNT(*), COUNT(DISTINCT position) FROM votes").fetchone() == (3, 1)


def test_sigkill_loses_no_acknowledged_vote(db, study_id):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen([sys.executable, str(HERE / "ack_writer.py"), str(db.path), str(study_id)],
                            stdout=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT)
    acked = []
    deadline = time.monotonic() + 60
    while len(acked) < 60 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        acked.append(int(line.split()[1]))
    os.kill(proc.pid, signal.SIGKILL)  # mid-study: writers are between and inside transactions
    rest, _ = proc.communicate(timeout=30)
    acked += [int(x.split()[1]) for x in rest.splitlines() if x.startswith("ACK ")]
    assert proc.returncode == -signal.SIGKILL
    assert len(acked) >= 60
    con = sqlite3.connect(db.path)
    assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    answered = {t for (t,) in con.execute("SELECT id FROM trials WHERE answered_at IS NOT NULL")}
    voted = dict(con.execute("SELECT trial_id, COUNT(*) FROM votes GROUP BY trial_id").fetchall())
    catch = {t for (t,) in con.execute("SELECT id FROM trials WHERE is_catch")}
    for trial_id in acked:
        assert trial_id in answered
        assert voted[trial_id] == (1 if trial_id in catch else 3)
    # Nothing half-written either: every answered trial has all its votes, no vote without an answered trial.
    assert set(voted) == answered
    for trial_id, count in voted.items():
        assert count == (1 if trial_id in catch else 3)
