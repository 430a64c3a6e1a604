"""The builder: finds both folder layouts, lists every missing image, hides methods behind uniform random files."""

import json
import sqlite3
import subprocess
import sys

import pytest
import yaml
from PIL import Image

from study_app.build import StudyBuildError, build_study, main
from study_app.db import StudyDB
from study_app.models import Candidate, Item, Study
from study_app.settings import CATCH_LABEL, REPO_ROOT

from .study_helpers import CONSENT_MD, METHODS, consent_and_start, make_stimuli, new_app, spec_for


def test_build_records_manifest_and_uniform_random_files(db, stimuli, tmp_path):
    study_id = build_study(spec_for(stimuli, tmp_path / "out", image_size=72), db)
    with db.read() as s:
        study = s.get(Study, study_id)
        items = s.query(Item).filter_by(study_id=study_id).all()
        cands = s.query(Candidate).filter_by(study_id=study_id).all()
        assert study.methods == sorted(METHODS)
        assert len(items) == 2 * 3
        assert {c.label for c in cands} == set(METHODS) | {CATCH_LABEL}
        tokens = [c.token for c in cands] + [i.input_token for i in items]
    files = sorted((tmp_path / "out" / "images").iterdir())
    assert len(files) == 2 * 3 * 4 + 2 * 2  # outputs + (input, catch copy) per face
    assert {f.name for f in files} == set(tokens)
    for f in files:
        assert f.suffix == ".png" and len(f.stem) == 32 and all(ch in "0123456789abcdef" for ch in f.stem)
        with Image.open(f) as img:
            assert img.format == "PNG" and img.size == (72, 72) and img.mode == "RGB"
            assert not img.info.get("dpi") and not any(isinstance(v, str) for v in img.info.values())
        data = f.read_bytes().lower()
        assert not any(m.lower().encode() in data for m in METHODS)


def test_flat_layout_and_jpeg_inputs(tmp_path):
    root = make_stimuli(tmp_path / "st", faces=("a1",), expressions=("happy", "sad"), flat_for=("STGAN", "USGAN"))
    Image.open(root / "inputs" / "a1.png").save(root / "inputs" / "a1.jpg")
    (root / "inputs" / "a1.png").unlink()
    db = StudyDB(tmp_path / "db.sqlite")
    build_study(spec_for(root, tmp_path / "out", expressions=("happy", "sad"), trials_per_participant=2), db)
    with db.read() as s:
        assert s.query(Candidate).filter(Candidate.item_id.isnot(None)).count() == 2 * 4


def test_every_missing_output_listed_in_one_error(tmp_path):
    root = make_stimuli(tmp_path / "st", expressions=("happy", "sad"))
    (root / "methods" / "STGAN" / "face01" / "sad.png").unlink()
    (root / "methods" / "USGAN" / "face02" / "happy.png").unlink()
    db = StudyDB(tmp_path / "db.sqlite")
    with pytest.raises(StudyBuildError) as err:
        build_study(spec_for(root, tmp_path / "out", expressions=("happy", "sad")), db)
    msg = str(err.value)
    assert "2 output image(s) missing" in msg
    assert "STGAN: face face01, expression sad" in msg and "USGAN: face face02, expression happy" in msg
    assert not (tmp_path / "out" / "images").exists() or not any((tmp_path / "out" / "images").iterdir())
    with db.read() as s:
        assert s.query(Study).count() == 0


def test_bad_specs_refused(db, stimuli, tmp_path):
    with pytest.raises(StudyBuildError, match="at least 2 methods"):
        build_study(spec_for(stimuli, tmp_path / "o", methods={"StarGAN": stimuli / "methods" / "StarGAN"}), db)
    with pytest.raises(StudyBuildError, match="unknown expressions"):
        build_study(spec_for(stimuli, tmp_path / "o", expressions=("smug",)), db)
    with pytest.raises(StudyBuildError, match="invalid method name"):
        build_study(spec_for(stimuli, tmp_path / "o", methods={"<b>x</b>": stimuli / "methods" / "STGAN",
                                                              "STGAN": stimuli / "methods" / "STGAN"}), db)
    build_study(spec_for(stimuli, tmp_path / "o"), db)
    with pytest.raises(StudyBuildError, match="already exists"):
        build_study(spec_for(stimuli, tmp_path / "o2"), db)


def test_cli_with_yaml_and_groups(stimuli, tmp_path):
    groups = tmp_path / "groups.csv"
    groups.write_text("face_id,item_group\nface01,in\nface02,out\n")
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump({
        "name": "yaml-study", "inputs": str(stimuli / "inputs"), "out": "built",
        "methods": {m: str(stimuli / "methods" / m) for m in METHODS},
        "expressions": ["happy", "surprised"], "groups": "groups.csv", "catch_trials": 2, "seed": 3,
        "completion_code": "ABC", "exclude_after_failed_checks": 2, "recruitment": "prolific",
        "prolific_study_id": "0123456789abcdef01234567", "max_participants": 40, "consent": "consent.md"}))
    (tmp_path / "consent.md").write_text(CONSENT_MD)
    db_path = tmp_path / "cli.sqlite"
    assert main(["--config", str(config), "--db", str(db_path), "--image-size", "48"]) == 0
    con = sqlite3.connect(db_path)
    rows = con.execute("SELECT face_id, item_group FROM items ORDER BY key").fetchall()
    assert set(rows) == {("face01", "in"), ("face02", "out")} and len(rows) == 4
    opts = json.loads(con.execute("SELECT options FROM studies").fetchone()[0])
    assert opts["completion_code"] == "ABC" and opts["catch_trials"] == 2 and opts["image_size"] == 48
    assert (opts["recruitment"], opts["prolific_study_id"], opts["max_participants"]) == (
        "prolific", "0123456789abcdef01234567", 40)
    assert (tmp_path / "built" / "images").is_dir()


def test_cli_module_reports_missing_and_exits_nonzero(tmp_path):
    root = make_stimuli(tmp_path / "st", faces=("f1",), expressions=("happy",))
    (root / "methods" / "STGAN" / "f1" / "happy.png").unlink()
    args = [sys.executable, "-m", "study_app.build", "--inputs", str(root / "inputs"), "--out", str(tmp_path / "o"),
            "--db", str(tmp_path / "x.sqlite"), "--expressions", "happy"]
    for m in METHODS:
        args += ["--method", f"{m}={root / 'methods' / m}"]
    proc = subprocess.run(args, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "STGAN: face f1, expression happy" in proc.stderr


PROLIFIC = dict(recruitment="prolific", prolific_study_id="0" * 24, catch_trials=2, exclude_after_failed_checks=2,
                consent=REPO_ROOT / "no-such-consent.md")


@pytest.mark.parametrize("settings, problem", [
    (dict(catch_trials=1, exclude_after_failed_checks=2), "can never fire with 1 catch trial"),
    (dict(catch_trials=0, exclude_after_failed_checks=1), "can never fire with 0 catch trial"),
    (dict(trials_per_participant=0), "trials_per_participant must be between 1 and the number of items"),
    (dict(trials_per_participant=7), "trials_per_participant must be between 1 and the number of items (6)"),
    (dict(exclude_after_failed_checks=0, failed_checks_code="F"), "failed_checks_code is never shown"),
    (dict(recruitment="prolific"), "needs prolific_study_id"),
    (dict(recruitment="prolific", prolific_study_id="abc"), "needs prolific_study_id"),
    (dict(recruitment="prolific", prolific_study_id="0" * 24, redirect_url="https://x/{code}"),
     "redirect_url does not apply to a prolific study"),
    (dict(prolific_study_id="0" * 24), "only for recruitment: prolific"),
    (dict(recruitment="mturk"), "recruitment must be one of prolific, link, pilot"),
    # Prolific's attention-check policy: two failed checks before a rejection in studies of 5 minutes or more.
    (PROLIFIC | dict(catch_trials=1, exclude_after_failed_checks=0), "a prolific study needs at least 2 catch "
                                                                     "trials, got 1"),
    (PROLIFIC | dict(catch_trials=3, exclude_after_failed_checks=1), "exclude_after_failed_checks 1 is too strict "
                                                                     "for a prolific study"),
    (PROLIFIC | dict(consent=None), "a prolific study needs consent: a Markdown file naming the researcher"),
    (dict(exclude_participants_of=("s0",)), "exclude_participants_of is only for recruitment: prolific"),
    (dict(enrolments_per_address_per_hour=0), "enrolments_per_address_per_hour must be 1 or more"),
    (dict(start_window_minutes=0), "start_window_minutes must be more than 0"),
    (dict(no_consent_code="no code"), "no_consent_code must be 1-64 letters"),
    (dict(redirect_url="javascript:alert(1)"), "redirect_url must start with https://"),
    (dict(completion_code="<b>"), "completion_code must be"),
    (dict(max_participants=0), "max_participants must be 1 or more"),
    (dict(slot_timeout_minutes=0), "slot_timeout_minutes must be more than 0"),
    (dict(expressions=("happy", "happy")), "expressions listed more than once: happy"),
    (dict(name="two words"), "invalid study name"),
])
def test_settings_that_cannot_work_are_refused(db, stimuli, tmp_path, settings, problem):
    with pytest.raises(StudyBuildError) as err:
        build_study(spec_for(stimuli, tmp_path / "o", **settings), db)
    assert problem in str(err.value)
    with db.read() as s:
        assert s.query(Study).count() == 0
    assert not (tmp_path / "o").exists()


def test_two_files_for_one_image_are_refused_not_collapsed(tmp_path):
    root = make_stimuli(tmp_path / "st", faces=("f1", "f2"), expressions=("happy",))
    Image.open(root / "inputs" / "f1.png").convert("RGB").save(root / "inputs" / "f1.jpg")
    db = StudyDB(tmp_path / "db.sqlite")
    with pytest.raises(StudyBuildError, match="two input files for one face id .*f1.jpg, f1.png"):
        build_study(spec_for(root, tmp_path / "o", expressions=("happy",), trials_per_participant=1), db)
    (root / "inputs" / "f1.jpg").unlink()
    Image.open(root / "methods" / "STGAN" / "f2" / "happy.png").save(root / "methods" / "STGAN" / "f2_happy.png")
    with pytest.raises(StudyBuildError, match=r"(?s)several files for one output.*STGAN: f2/happy.png, f2_happy.png"):
        build_study(spec_for(root, tmp_path / "o", expressions=("happy",), trials_per_participant=1), db)


def test_a_bundle_moves_and_is_served_from_its_new_place(stimuli, tmp_path, monkeypatch):
    args = ["--bundle", str(tmp_path / "made" / "s1"), "--inputs", str(stimuli / "inputs"), "--name", "s1",
            "--expressions", "happy,sad", "--catch-trials", "1", "--exclude-after-failed-checks", "1"]
    for m in METHODS:
        args += ["--method", f"{m}={stimuli / 'methods' / m}"]
    assert main(args) == 0
    assert sqlite3.connect(tmp_path / "made" / "s1" / "study.sqlite").execute(
        "SELECT image_dir FROM studies").fetchone() == (".",)
    moved = tmp_path / "server" / "srv" / "s1"
    moved.parent.mkdir(parents=True)
    (tmp_path / "made" / "s1").rename(moved)  # laptop to server: the old path no longer exists
    monkeypatch.setenv("USGAN_STUDY_DB", str(moved / "study.sqlite"))
    monkeypatch.delenv("USGAN_STUDY_DEMO", raising=False)
    at = consent_and_start(new_app(study="s1"))
    assert not at.exception and len(at.get("image")) == 1 + len(METHODS)
