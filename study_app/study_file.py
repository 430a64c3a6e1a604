"""The study's YAML file and the builder's list arguments: method folders, item groups, the pilot of a study."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path
from typing import Any

import yaml

from study_app.spec import StudyBuildError, StudySpec

# Places of a pilot built with --pilot; enough to measure the pace (three finishers) and see every screen type.
PILOT_PLACES = 5
# Settings that only make sense with Prolific's ids; a pilot (anonymous or preview ids) drops them.
PROLIFIC_ONLY = ("prolific_study_id", "exclude_participants_of", "exclude_pids_file")
_PATH_KEYS = ("inputs", "out", "consent", "debrief", "exclude_pids_file")


def parse_method(text: str) -> tuple[str, Path]:
    """`NAME=DIR` from the command line."""
    name, sep, folder = text.partition("=")
    if not sep or not name or not folder:
        raise argparse.ArgumentTypeError(f"expected NAME=DIR, got {text!r}")
    return name, Path(folder)


def read_groups(path: Path) -> dict[str, str]:
    """`face_id,item_group` rows (a header line is allowed), e.g. `in`/`out` of the training set."""
    groups: dict[str, str] = {}
    with open(path, newline="") as fh:
        for row in csv.reader(fh):
            if not row or row[0].strip().startswith("#") or row[0].strip() in ("face_id", "face"):
                continue
            if len(row) < 2:
                raise StudyBuildError(f"{path}: expected face_id,item_group, got {row}")
            groups[row[0].strip()] = row[1].strip()
    return groups


def spec_from_yaml(path: Path) -> dict[str, Any]:
    """Fields of a YAML study file; relative paths are relative to the file."""
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise StudyBuildError(f"study file not found: {path}") from None
    except yaml.YAMLError as err:
        raise StudyBuildError(f"{path} is not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise StudyBuildError(f"{path}: expected a mapping at the top level")
    base = path.resolve().parent

    def rel(value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else base / p

    fields: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _PATH_KEYS:
            fields[key] = rel(value)
        elif key == "methods":
            fields[key] = {str(n): rel(d) for n, d in value.items()}
        elif key == "groups":
            fields[key] = (read_groups(rel(value)) if isinstance(value, str)
                           else {str(k): str(v) for k, v in value.items()})
        elif key in ("expressions", "exclude_participants_of"):
            fields[key] = tuple(str(v) for v in ([value] if isinstance(value, str) else value))
        elif key in StudySpec.__dataclass_fields__ and key != "pilot_of":
            fields[key] = value
        else:
            raise StudyBuildError(f"{path}: unknown key {key!r}")
    return fields


def pilot_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """The pilot of a study file: its own name and a few places, anonymous or preview ids, no Prolific settings."""
    name = fields.get("name", StudySpec.name)
    pilot = {k: v for k, v in fields.items() if k not in PROLIFIC_ONLY}
    pilot.update(name=f"{name}-pilot", recruitment="pilot", pilot_of=name, max_participants=PILOT_PLACES)
    pilot.pop("redirect_url", None)  # a pilot never sends anyone on
    return pilot
