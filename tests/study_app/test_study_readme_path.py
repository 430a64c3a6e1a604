"""study_app/README.md's path from four folders of method outputs to the chart, run as written on a fresh database."""

import os
import re
import subprocess
import sys

import pandas as pd
import pytest
from study_helpers import answer_all, make_stimuli

from study_app import enrolment, routing
from study_app.db import StudyDB
from study_app.settings import CATCH_LABEL, REPO_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

README = REPO_ROOT / "study_app" / "README.md"
FOLDERS = {"stargan": "StarGAN", "stgan": "STGAN", "ganimation": "GANimation", "usgan": "US-GAN"}
EXPRESSIONS = ("angry", "disgusted", "afraid", "happy", "sad", "surprised")


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


def test_from_four_folders_to_the_chart(tmp_path):
    work = tmp_path / "work"
    src = make_stimuli(tmp_path / "src", faces=tuple(f"face{k:02d}" for k in range(6)),
                       methods=tuple(FOLDERS), expressions=EXPRESSIONS)
    work.mkdir()
    (src / "inputs").rename(work / "faces")
    (src / "methods").rename(work / "out")

    built = run_block("build", work)
    assert "participant link: https://YOUR.HOST/?PROLIFIC_PID=" in built.stdout

    # Participants take part (the app's own code path, without the browser): six Prolific PIDs arrive through
    # the study's link; the first fails both attention checks.
    bundle = work / "bundles" / "study1"
    db = StudyDB(bundle / "study.sqlite")
    for k in range(6):
        pid = f"{k + 1:024x}"
        entry = routing.route(db, {"PROLIFIC_PID": pid, "STUDY_ID": "0123456789abcdef01234567",
                                   "SESSION_ID": f"s{k}"}, demo=False)
        assert isinstance(entry, routing.Entry) and entry.study.name == "study1"
        person = enrolment.enroll(db, entry.study.id, enrolment.new_public_id(), pid, "0123456789abcdef01234567",
                                  f"s{k}")
        shift = 1 if k == 0 else 0
        answer_all(db, person, pick=lambda t, labels, s=shift: (labels.index(CATCH_LABEL) + s) % 4
                   if t.is_catch else (k + t.ordinal) % 4)
    db.dispose()

    run_block("results", work, STUDY_DIR=str(bundle))
    people = pd.read_csv(work / "participants.csv", keep_default_na=False, dtype={"participant_id": str})
    people = people.set_index("participant_id")
    assert len(people) == 6 and set(people["status"]) == {"finished"}
    assert people.loc[f"{1:024x}", ["failed_checks", "excluded", "code"]].tolist() == [2, 1, "CFAIL9"]
    assert set(people.drop(index=f"{1:024x}")["code"]) == {"C1A2B3"}
    assert len(pd.read_csv(work / "votes.csv")) == 6 * (36 * 3 + 2)
    report = (work / "report" / "report.txt").read_text()
    assert "participants: 5 analysed of 6" in report and "(the study's rule)" in report
    assert "Pre-specified contrasts: US-GAN against each other method (Holm across all 9)" in report
    assert "Screen positions chosen" in report
    assert (work / "report" / "preferences.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
