"""A study's settings are dataclass fields, written the same way in a YAML study file and as builder flags."""

from dataclasses import MISSING, fields
from pathlib import Path

import pytest
import yaml

from study_app.build import build_parser
from study_app.spec import StudyBuildError, StudyOptions, StudySpec, setting_fields
from study_app.study_file import flag_settings, spec_from_yaml

# Every setting at a value other than its default: (as in the YAML file, as on the command line).
EVERY_SETTING = {
    "inputs": ("faces", "faces"),
    "methods": ({"A": "a", "B": "b"}, None),
    "out": ("built", "built"),
    "name": ("s1", "s1"),
    "seed": (5, "5"),
    "expressions": (["happy", "sad"], "happy,sad"),
    "groups": ("groups.csv", "groups.csv"),
    "consent": ("consent.md", "consent.md"),
    "debrief": ("debrief.md", "debrief.md"),
    "exclude_pids_file": ("pids.txt", "pids.txt"),
    "catch_trials": (3, "3"),
    "trials_per_participant": (4, "4"),
    "completion_code": ("C1", "C1"),
    "failed_checks_code": ("F1", "F1"),
    "exclude_after_failed_checks": (3, "3"),
    "redirect_url": ("https://x.org/{code}", "https://x.org/{code}"),
    "image_size": (48, "48"),
    "recruitment": ("prolific", "prolific"),
    "prolific_study_id": ("0" * 24, "0" * 24),
    "max_participants": (9, "9"),
    "slot_timeout_minutes": (45.5, "45.5"),
    "start_window_minutes": (7.5, "7.5"),
    "enrolments_per_address_per_hour": (2, "2"),
    "no_consent_code": ("N1", "N1"),
    "screen_out_code": ("S1", "S1"),
    "exclude_participants_of": (["s0", "s00"], "s0,s00"),
    "seconds_per_screen": (25.5, "25.5"),
}


def test_every_field_but_the_pilots_link_is_a_setting():
    names = [f.name for f, _ in setting_fields()]
    assert len(names) == len(set(names)), "a setting's name must not be both the spec's and its options'"
    internal = {"options", "pilot_of"}
    assert set(names) == {f.name for cls in (StudySpec, StudyOptions) for f in fields(cls)} - internal
    assert set(names) == set(EVERY_SETTING)


def absolute(settings: dict, folder: Path) -> dict:
    """Settings with their paths made absolute from folder, as a study file's are once read."""
    out = {k: folder / v if isinstance(v, Path) else v for k, v in settings.items()}
    out["methods"] = {name: folder / d for name, d in settings["methods"].items()}
    return out


def test_each_flag_gives_what_the_same_key_of_a_study_file_gives(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the flags' relative paths start here, the file's beside the file: the same
    (tmp_path / "groups.csv").write_text("face_id,item_group\nf1,in\nf2,out\n")
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump({k: in_file for k, (in_file, _) in EVERY_SETTING.items()}))
    argv = ["--method", "A=a", "--method", "B=b"]
    for f, _ in setting_fields():
        if EVERY_SETTING[f.name][1] is not None:
            argv += [f.metadata.get("flag", "--" + f.name.replace("_", "-")), EVERY_SETTING[f.name][1]]
    from_file = spec_from_yaml(config)
    assert absolute(flag_settings(build_parser().parse_args(argv)), tmp_path) == from_file
    spec = StudySpec.from_settings(from_file)
    stored = StudyOptions.__dataclass_fields__
    for f, _ in setting_fields():
        value = getattr(spec.options if f.name in stored else spec, f.name)
        assert value != (f.default_factory() if f.default_factory is not MISSING else f.default), f.name
    assert spec.groups == {"f1": "in", "f2": "out"} and spec.options.exclude_participants_of == ("s0", "s00")


def test_a_key_that_is_no_setting_is_refused_by_name(tmp_path):
    for key in ("options", "pilot_of", "catch_trial"):
        config = tmp_path / f"{key}.yaml"
        config.write_text(yaml.safe_dump({key: 1}))
        with pytest.raises(StudyBuildError, match=f"unknown key '{key}'"):
            spec_from_yaml(config)


@pytest.mark.parametrize("text, problem", [
    ("consent:\n", "'consent' needs a file or folder path, got None"),
    ("methods: [a, b]\n", "'methods' needs a mapping of NAME: folder lines, got list"),
    ("methods:\n  A:\n", "'methods.A' needs a file or folder path, got None"),
    ("groups: [1, 2]\n", "'groups' needs a mapping of face_id: group lines, got list"),
    ("exclude_participants_of:\n", "'exclude_participants_of' needs a name or a list of names"),
])
def test_a_malformed_value_is_one_line_naming_the_key(tmp_path, text, problem):
    config = tmp_path / "study.yaml"
    config.write_text(text)
    with pytest.raises(StudyBuildError) as err:
        spec_from_yaml(config)
    assert problem in str(err.value) and "\n" not in str(err.value)
