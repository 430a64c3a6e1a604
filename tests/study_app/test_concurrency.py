"""50 simultaneous participants lose and duplicate nothing; SIGKILL of a writer loses no acknowledged vote."""

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from study_app import enrolment
from study_app import participation as part
from study_app.build import build_study
from study_app.settings import CATCH_LABEL, QUESTIONS, REPO_ROOT

from .study_helpers import age, spec_for, trial_labels

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


SLOT_TIMEOUT_MINUTES = 60


class Freed:
    """Places given back so far; a participant turned away waits for the next one rather than polling a clock."""

    def __init__(self, total: int) -> None:
        self.count, self.total = 0, total
        self.changed = threading.Condition()

    def give_back(self) -> None:
        with self.changed:
            self.count += 1
            self.changed.notify_all()

    def wait_past(self, seen: int) -> None:
        """Return once a place was given back after `seen`; fail at once if none is left to come."""
        assert seen < self.total, "turned away after every drop-out had given its place back"
        with self.changed:  # the timeout only turns a hang into a failure: admission never waits on time
            assert self.changed.wait_for(lambda: self.count > seen, timeout=300), "no place was given back"


def run_or_drop(db, study_id, n, barrier, drop_after, freed):
    """Join (waiting for a place to be given back while the study is full), answer every trial or stop for good
    after `drop_after` and fall silent for two slot timeouts."""
    if drop_after is None:
        barrier.wait()  # those who will drop out are already in: the crowd races for what is left
    else:
        pid = enrolment.enroll(db, study_id, f"w{n}")
        barrier.wait()
    while drop_after is None:
        seen = freed.count  # read before trying: a place given back during the try is not missed
        try:
            pid = enrolment.enroll(db, study_id, f"w{n}")
            break
        except enrolment.NotEnrolling:
            freed.wait_past(seen)
    acked = 0
    try:
        while (trial := part.progress(db, pid).trial) is not None and (drop_after is None or acked < drop_after):
            labels = trial_labels(db, trial.trial_id)
            pos = labels.index(CATCH_LABEL) if trial.is_catch else n % 4
            part.mark_shown(db, trial.trial_id)
            assert part.submit(db, pid, trial.trial_id,
                               dict.fromkeys(part.questions_for(trial.is_catch), pos)).stored
            acked += 1
        if drop_after is not None:
            # Silence is written, not waited for: the timeout stays at its hour, far beyond any pause of those
            # who keep answering, however loaded the machine.
            age(db, 2 * SLOT_TIMEOUT_MINUTES, f"w{n}")
    finally:
        if drop_after is not None:
            freed.give_back()  # even after a failure, so no one waits for a place that will not come
    return acked


def test_fifty_participants_with_drop_outs_end_balanced_among_completers(db, stimuli, tmp_path):
    """50 arrive for 40 places; 10 drop out mid-study; their places go to those who were turned away."""
    # The 10 who drop out enrol first: were one of them turned away instead, the 40 who finish could fill every
    # place before it got in, and it would wait forever for a study that is rightly full.
    # Tolerance: completers fill slots 0..39 with no hole, so every item is shown exactly 40 * 3 / 6 = 20 times
    # (the window property allows a spread of 1 in general) and every method sits 5 times in each position of
    # each item (the Latin square over 4 methods). Zero spread is asserted.
    sid = build_study(spec_for(stimuli, tmp_path / "w", max_participants=40,
                               slot_timeout_minutes=SLOT_TIMEOUT_MINUTES), db)
    n = 50
    drop = {k: k % 3 for k in range(0, n, 5)}  # 10 drop-outs, after 0, 1 or 2 answered trials
    barrier, freed = threading.Barrier(n), Freed(len(drop))
    with ThreadPoolExecutor(n) as pool:
        acked = list(pool.map(lambda k: run_or_drop(db, sid, k, barrier, drop.get(k), freed), range(n)))
    con = sqlite3.connect(db.path)
    done = con.execute("SELECT slot FROM participants WHERE finished_at IS NOT NULL ORDER BY slot").fetchall()
    assert [s for (s,) in done] == list(range(40))
    shown = con.execute("SELECT t.item_id, COUNT(*) FROM trials t JOIN participants p ON p.id = t.participant_id "
                        "WHERE p.finished_at IS NOT NULL AND NOT t.is_catch GROUP BY t.item_id").fetchall()
    assert len(shown) == 6 and {c for _, c in shown} == {20}
    seats = con.execute("SELECT t.item_id, c.label, j.key, COUNT(*) FROM trials t JOIN participants p ON "
                        "p.id = t.participant_id, json_each(t.layout) j JOIN candidates c ON c.id = j.value "
                        "WHERE p.finished_at IS NOT NULL AND NOT t.is_catch GROUP BY 1, 2, 3").fetchall()
    assert len(seats) == 6 * 4 * 4 and {c for *_, c in seats} == {5}
    # No vote lost or doubled: every acknowledged trial holds exactly its answers, and nothing else is stored.
    answered = con.execute("SELECT COUNT(*), SUM(CASE WHEN is_catch THEN 1 ELSE 3 END) FROM trials "
                           "WHERE answered_at IS NOT NULL").fetchone()
    assert answered[0] == sum(acked) and con.execute("SELECT COUNT(*) FROM votes").fetchone()[0] == answered[1]
    assert con.execute("SELECT COUNT(*) FROM votes_long").fetchone()[0] == answered[1]
    assert sum(acked) == 40 * 4 + sum(drop.values())
    assert con.execute("SELECT COUNT(*) FROM participants").fetchone()[0] == n


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
    while len(acked) < 60:  # no deadline: the writer prints far more than 60, and its exit ends the read
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
