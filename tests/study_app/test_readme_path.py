"""study_app/README.md's path from four folders of method outputs to the chart, run as written on a fresh database."""

import os
import re
import sqlite3
import subprocess
import sys

import pandas as pd
import pytest

from study_app import enrolment, routing
from study_app import participation as part
from study_app.db import StudyDB
from study_app.settings import CATCH_LABEL, REPO_ROOT

from .study_helpers import answer_all, make_stimuli

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

README = REPO_ROOT / "study_app" / "README.md"
FOLDERS = {"stargan": "StarGAN", "stgan": "STGAN", "ganimation": "GANimation", "usgan": "US-GAN"}
EXPRESSIONS = ("angry", "disgusted", "afraid", "happy", "sad", "surprised")
STUDY = "0123456789abcdef01234567"


def readme_block(name: str) -> str:
    """The bash block the README marks `<!-- readme-path: name -->`."""
    found = re.search(rf"<!-- readme-path: {name} -->\n```bash\n(.*?)```", README.read_text(), re.S)
    assert found, f"README block {name!r} is gone"
    return found.group(1)


def run_block(name: str, cwd, **env) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("USGAN_STUDY_")}
    # As in a shell where the project's environment is active (`source .venv/bin/activate`): its `python` first.
    path = os.pathsep.join([os.path.dirname(sys.executable), full.get("PATH", "")])
    full.update(PATH=path, PYTHONPATH=str(REPO_ROOT), MPLBACKEND="Agg", **env)
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", readme_block(name)], cwd=cwd, env=full,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def take_part(db, study_name, shift=0, **ids):
    """One participant through the app's own code path (without the browser); shift 1 fails every catch."""
    entry = routing.route(db, ids or {"study": study_name}, demo=False)
    assert isinstance(entry, routing.Entry) and entry.study.name == study_name
    person = enrolment.enroll(db, entry.study.id, entry.public_id or enrolment.new_public_id(), entry.platform_pid,
                              entry.platform_study_id, entry.platform_session_id)
    return answer_all(db, person, pick=lambda t, labels: (labels.index(CATCH_LABEL) + shift) % 4
                      if t.is_catch else (t.ordinal + shift) % 4)


def test_from_four_folders_to_the_chart(tmp_path):
    work = tmp_path / "work"
    src = make_stimuli(tmp_path / "src", faces=tuple(f"face{k:02d}" for k in range(6)),
                       methods=tuple(FOLDERS), expressions=EXPRESSIONS)
    work.mkdir()
    (src / "inputs").rename(work / "faces")
    (src / "methods").rename(work / "out")

    built = run_block("build", work)
    assert "participant link: https://YOUR.HOST/?PROLIFIC_PID=" in built.stdout
    assert "texts: consent sha256 " in built.stdout and "pace assumed (20 s per screen" in built.stdout
    pilot = run_block("pilot", work)
    assert "built study 'study1-pilot'" in pilot.stdout and "recruitment pilot" in pilot.stdout

    # Three colleagues try the pilot; their pace becomes study1's estimate.
    bundle = work / "bundles" / "study1"
    db = StudyDB(bundle / "study.sqlite")
    for k in range(3):
        take_part(db, "study1-pilot")
    db.dispose()
    con = sqlite3.connect(bundle / "study.sqlite")  # as if each had taken 3 s per screen
    con.execute("UPDATE participants SET consented_at = datetime(finished_at, '-114 seconds')")
    con.commit()
    con.close()
    pace = run_block("pace", work)
    assert pace.stdout.strip() == ("study1: about 2 minutes (38 screens at 3 s per screen; pace measured: median "
                                   "of 3 finishers of its pilot study1-pilot)")

    # Six Prolific PIDs arrive through the study's link; the first fails both attention checks, the last returns
    # its submission halfway, and one more PID never gets in.
    db = StudyDB(bundle / "study.sqlite")
    pids = [f"{k + 1:024x}" for k in range(6)]
    for k, pid in enumerate(pids[:5]):
        take_part(db, "study1", shift=1 if k == 0 else 0, PROLIFIC_PID=pid, STUDY_ID=STUDY, SESSION_ID=f"s{k}")
    entry = routing.route(db, {"PROLIFIC_PID": pids[5], "STUDY_ID": STUDY, "SESSION_ID": "s5"}, demo=False)
    half = enrolment.enroll(db, entry.study.id, enrolment.new_public_id(), pids[5], STUDY, "s5")
    trial = part.progress(db, half).trial
    part.submit(db, half, trial.trial_id, dict.fromkeys(part.questions_for(trial.is_catch), 0))
    db.dispose()
    statuses = ["REJECTED", "APPROVED", "APPROVED", "APPROVED", "APPROVED", "RETURNED"]
    (work / "prolific_export.csv").write_text(
        "Submission id,Participant id,Status,Completion code\n"
        + "".join(f"s{k},{pid},{status},C1A2B3\n" for k, (pid, status) in enumerate(zip(pids, statuses)))
        + f"s9,{'f' * 24},TIMED-OUT,\n")

    run_block("results", work, STUDY_DIR=str(bundle))
    people = pd.read_csv(work / "participants.csv", keep_default_na=False, dtype={"prolific_pid": str})
    people = people.set_index("prolific_pid")
    assert len(people) == 6 and list(people["status"]) == ["finished"] * 5 + ["in progress"]
    assert people.loc[pids[0], ["failed_checks", "excluded", "code"]].tolist() == [2, 1, "CFAIL9"]
    assert set(people.loc[pids[1:5], "code"]) == {"C1A2B3"} and people.loc[pids[5], "finished"] == 0
    votes = pd.read_csv(work / "votes.csv")
    assert len(votes) == 5 * (36 * 3 + 2) + 3 and set(votes["participant_id"]) == set(people["participant_id"])
    report = (work / "report" / "report.txt").read_text()
    assert "participants: 4 analysed of 6" in report and "(the study's rule)" in report
    assert "1 unfinished, 1 Prolific: REJECTED, 1 Prolific: RETURNED;" in report
    assert ("Prolific export: 7 submissions (4 APPROVED, 1 REJECTED, 1 RETURNED, 1 TIMED-OUT); votes kept from "
            "APPROVED only; submissions that never reached the study: 1") in report
    assert "Pre-specified contrasts: US-GAN against each other method (Holm across all 9)" in report
    assert "Screen positions chosen" in report
    assert (work / "report" / "preferences.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
