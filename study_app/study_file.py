"""The two ways to write a study's settings, a YAML file and the builder's flags, both made from StudySpec's fields;
and the pilot of a study."""

from __future__ import annotations

import argparse
import csv
import typing
from pathlib import Path
from typing import Any

import yaml

from study_app.spec import StudyBuildError, StudySpec, setting_fields

# Places of a pilot built with --pilot; enough to measure the pace (three finishers) and see every screen type.
PILOT_PLACES = 5
# Settings that only make sense with Prolific's ids; a pilot (anonymous or preview ids) drops them.
PROLIFIC_ONLY = ("prolific_study_id", "exclude_participants_of", "exclude_pids_file")
_METAVARS = {Path: "PATH", int: "N", float: "NUMBER", str: "TEXT"}


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


def comma_list(text: str) -> tuple[str, ...]:
    """`a,b,c` from the command line; blanks dropped."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _is_dict_of(kind: Any, value_type: type) -> bool:
    return typing.get_origin(kind) is dict and typing.get_args(kind)[1] is value_type


def spec_from_yaml(path: Path) -> dict[str, Any]:
    """Settings of a YAML study file; relative paths are relative to the file."""
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

    kinds = {f.name: kind for f, kind in setting_fields()}
    settings: dict[str, Any] = {}
    for key, value in raw.items():
        kind = kinds.get(key)
        if kind is None:
            raise StudyBuildError(f"{path}: unknown key {key!r}")
        if kind is Path:
            settings[key] = rel(_path_text(path, key, value))
        elif _is_dict_of(kind, Path):  # methods: name -> folder
            settings[key] = {str(n): rel(_path_text(path, f"{key}.{n}", d))
                             for n, d in _mapping(path, key, value, "NAME: folder").items()}
        elif _is_dict_of(kind, str):  # groups: a CSV file or the mapping itself
            settings[key] = (read_groups(rel(value)) if isinstance(value, str)
                             else {str(k): str(v) for k, v in _mapping(path, key, value, "face_id: group").items()})
        elif typing.get_origin(kind) is tuple:
            if value is None or isinstance(value, dict):
                raise StudyBuildError(f"{path}: {key!r} needs a name or a list of names")
            settings[key] = tuple(str(v) for v in ([value] if isinstance(value, str) else value))
        else:
            settings[key] = value
    return settings


def _path_text(path: Path, key: str, value: Any) -> str:
    """A path setting's text; an empty or non-text value is a one-line error naming the key."""
    if not isinstance(value, str) or not value.strip():
        raise StudyBuildError(f"{path}: {key!r} needs a file or folder path, got {value!r}")
    return value


def _mapping(path: Path, key: str, value: Any, shape: str) -> dict:
    """A mapping setting; anything else is a one-line error that shows the expected shape."""
    if not isinstance(value, dict):
        raise StudyBuildError(f"{path}: {key!r} needs a mapping of {shape} lines, got {type(value).__name__}")
    return value


def add_setting_flags(ap: argparse.ArgumentParser) -> None:
    """One flag per setting, named after its field and helped by its metadata; each overrides the study file."""
    for f, kind in setting_fields():
        flag = f.metadata.get("flag", "--" + f.name.replace("_", "-"))
        kw: dict[str, Any] = dict(dest=f.name, help=f.metadata["help"])
        if _is_dict_of(kind, Path):
            kw.update(type=parse_method, action="append")
        elif _is_dict_of(kind, str):
            kw.update(type=Path, metavar="CSV")  # read after parsing, so a bad file gets the builder's own error
        elif typing.get_origin(kind) is tuple:
            kw.update(type=comma_list, metavar="A,B,...")
        else:
            kw.update(type=kind, metavar=_METAVARS[kind])
        if "metavar" in f.metadata:
            kw["metavar"] = f.metadata["metavar"]
        ap.add_argument(flag, **kw)


def flag_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags, in the form spec_from_yaml gives them; flags not given are left out."""
    settings: dict[str, Any] = {}
    for f, kind in setting_fields():
        value = getattr(args, f.name)
        if value is None or value == ():
            continue
        if _is_dict_of(kind, Path):
            value = dict(value)
        elif _is_dict_of(kind, str):
            value = read_groups(value)
        settings[f.name] = value
    return settings


def pilot_fields(settings: dict[str, Any]) -> dict[str, Any]:
    """The pilot of a study file: its own name and a few places, anonymous or preview ids, no Prolific settings."""
    name = settings.get("name", StudySpec.name)
    pilot = {k: v for k, v in settings.items() if k not in PROLIFIC_ONLY}
    pilot.update(name=f"{name}-pilot", recruitment="pilot", pilot_of=name, max_participants=PILOT_PLACES)
    pilot.pop("redirect_url", None)  # a pilot never sends anyone on
    return pilot
