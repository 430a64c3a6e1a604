"""Votes joined to Prolific's decisions: only approved finishers count, and the report counts every group."""

import json
import subprocess
import sys

import pytest

from study_app import enrolment
from study_app import participation as part
from study_app.build import build_study
from study_app.reports import main as reports_main
from study_app.settings import CATCH_LABEL, REPO_ROOT

from .study_helpers import answer_all, prolific_fields, spec_for

STUDY_ID = "0123456789abcdef01234567"
# Who did what, by Prolific id: (their submission's status on Prolific, screens answered; None: all).
PEOPLE = {
    "a1": ("APPROVED", None), "a2": ("APPROVED", None), "a3": ("APPROVED", 1),
    "wait": ("AWAITING REVIEW", None), "back": ("RETURNED", 2), "rej": ("REJECTED", None),
    "late": ("TIMED-OUT", 1), "fake": (None, None),  # a made-up PID: no submission on Prolific at all
}
NEVER_ENROLLED = "f" * 24


def pid(name):
    return name.encode().hex().rjust(24, "0")[:24]


def run_analysis(*args):
    done = subprocess.run([sys.executable, "analysis/preferences.py", "--n-boot", "50", "--format", "json", *args],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(REPO_ROOT), "MPLBACKEND": "Agg", "PATH": ""})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def paid_study(db, stimuli, tmp_path):
    """A Prolific study taken by PEOPLE, and Prolific's submissions export for it (its own column names)."""
    sid = build_study(spec_for(stimuli, tmp_path / "s", name="s1",
                               **prolific_fields(tmp_path, prolific_study_id=STUDY_ID)), db)
    for k, (name, (_, screens)) in enumerate(PEOPLE.items()):
        person = enrolment.enroll(db, sid, f"key-{name}", pid(name), STUDY_ID, f"sub{k}")
        if screens is None:
            answer_all(db, person, pick=lambda t, labels: labels.index(CATCH_LABEL) if t.is_catch else 0)
        for _ in range(screens or 0):
            trial = part.progress(db, person).trial
            part.submit(db, person, trial.trial_id, dict.fromkeys(part.questions_for(trial.is_catch), 1))
    rows = [(pid(n), status) for n, (status, _) in PEOPLE.items() if status] + [(NEVER_ENROLLED, "APPROVED")]
    export = tmp_path / "prolific_export.csv"
    export.write_text("Submission id,Participant id,Status,Started at,Completed at,Time taken,Completion code\n"
                      + "".join(f"sub{k},{p},{s},2026-12-06T10:00:00Z,,300,DONE123\n"
                                for k, (p, s) in enumerate(rows)))
    return export


def test_only_approved_finishers_count_and_every_group_is_counted(db, paid_study, tmp_path):
    report = run_analysis("--db", str(db.path), "--study", "s1", "--prolific-export", str(paid_study))
    people = {p["participant_id"]: p for p in report["participants"]}
    kept = {k for k, p in people.items() if not p["excluded"]}
    assert kept == {"key-a1", "key-a2"}
    assert report["meta"]["votes"] == 2 * 3 * 3  # their ordinary trials' votes, exactly
    assert {k: people[k]["reason"] for k in people if k not in kept} == {
        "key-a3": "unfinished", "key-wait": "Prolific: AWAITING REVIEW", "key-back": "unfinished; Prolific: RETURNED",
        "key-rej": "Prolific: REJECTED", "key-late": "unfinished; Prolific: TIMED-OUT",
        "key-fake": "not in the Prolific export"}
    meta = report["meta"]
    assert (meta["participants_total"], meta["participants_analysed"], meta["excluded_unfinished"]) == (8, 2, 3)
    assert meta["excluded_platform"] == {"Prolific: AWAITING REVIEW": 1, "Prolific: REJECTED": 1,
                                         "Prolific: RETURNED": 1, "Prolific: TIMED-OUT": 1,
                                         "not in the Prolific export": 1}
    assert meta["prolific"]["submissions"] == {"APPROVED": 4, "AWAITING REVIEW": 1, "REJECTED": 1, "RETURNED": 1,
                                               "TIMED-OUT": 1}
    assert meta["prolific"]["never_enrolled"] == 1 and meta["prolific"]["kept"] == ["APPROVED"]
    assert pid("a1") not in json.dumps(report)  # the report keys participants by the votes' key, never by PID

    # Before approving: AWAITING REVIEW counts too when asked for.
    waiting = run_analysis("--db", str(db.path), "--study", "s1", "--prolific-export", str(paid_study),
                           "--include-awaiting-review")
    assert waiting["meta"]["participants_analysed"] == 3

    # The same from the two CSV exports (one key across both), as a collaborator without the database gets them.
    votes, participants = tmp_path / "votes.csv", tmp_path / "participants.csv"
    assert reports_main(["--db", str(db.path), "--study", "s1", "--out", str(votes),
                         "--participants", str(participants)]) == 0
    from_csv = run_analysis("--csv", str(votes), "--participants", str(participants),
                            "--prolific-export", str(paid_study))
    assert from_csv["meta"]["votes"] == meta["votes"] and from_csv["participants"] == report["participants"]


def test_the_text_report_says_how_many_were_dropped_and_why(db, paid_study):
    done = subprocess.run([sys.executable, "analysis/preferences.py", "--db", str(db.path), "--study", "s1",
                           "--prolific-export", str(paid_study), "--n-boot", "50"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(REPO_ROOT), "MPLBACKEND": "Agg", "PATH": ""})
    assert done.returncode == 0, done.stderr
    assert ("participants: 2 analysed of 8 (6 excluded: 0 by catch trials, 0 incomplete, 0 speeders, 3 unfinished, "
            "1 Prolific: AWAITING REVIEW, 1 Prolific: REJECTED, 1 Prolific: RETURNED, 1 Prolific: TIMED-OUT, "
            "1 not in the Prolific export;") in done.stdout
    assert ("Prolific export: 8 submissions (4 APPROVED, 1 AWAITING REVIEW, 1 REJECTED, 1 RETURNED, 1 TIMED-OUT); "
            "votes kept from APPROVED only; submissions that never reached the study: 1") in done.stdout


def test_unfinished_participants_are_dropped_by_default(db, paid_study):
    plain = run_analysis("--db", str(db.path), "--study", "s1")
    assert plain["meta"]["excluded_unfinished"] == 3 and plain["meta"]["participants_analysed"] == 5
    everyone = run_analysis("--db", str(db.path), "--study", "s1", "--keep-unfinished")
    assert everyone["meta"]["participants_analysed"] == 8


def test_a_csv_without_the_id_link_or_a_wrong_export_gets_one_line(db, paid_study, tmp_path):
    votes = tmp_path / "votes.csv"
    reports_main(["--db", str(db.path), "--study", "s1", "--out", str(votes)])
    env = {"PYTHONPATH": str(REPO_ROOT), "MPLBACKEND": "Agg", "PATH": ""}
    for args, message in (
            (["--csv", str(votes), "--prolific-export", str(paid_study)], "needs --participants participants.csv"),
            (["--db", str(db.path), "--prolific-export", str(votes)], "is it Prolific's submissions export")):
        done = subprocess.run([sys.executable, "analysis/preferences.py", *args], cwd=REPO_ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 1 and done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
