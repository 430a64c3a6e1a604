"""Study builder: check the stimulus folders, re-encode images under random tokens, record the manifest in SQLite.

    python -m study_app.build --inputs DIR --method NAME=DIR --method NAME=DIR ... --out STUDY_DIR
    python -m study_app.build --config study.yaml
"""

from __future__ import annotations

import argparse
import csv
import re
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from study_app import images
from study_app.db import Candidate, Item, Study, StudyDB, open_db
from study_app.settings import CATCH_LABEL, EXPRESSIONS

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")
FACE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class StudyBuildError(ValueError):
    """A study that cannot be built; the message lists every problem found."""


@dataclass
class StudySpec:
    """Everything a study is built from; the CLI flags and the YAML file fill the same fields."""

    inputs: Path
    methods: dict[str, Path]
    out: Path
    name: str = "study"
    seed: int | None = None
    expressions: tuple[str, ...] = EXPRESSIONS
    groups: dict[str, str] = field(default_factory=dict)
    catch_trials: int = 2
    trials_per_participant: int | None = None
    completion_code: str | None = None
    failed_checks_code: str | None = None
    exclude_after_failed_checks: int = 2
    redirect_url: str | None = None
    image_size: int = 256


@dataclass(frozen=True)
class Stimuli:
    """Source files found for a spec: inputs per face, outputs per (method, face, expression)."""

    inputs: dict[str, Path]
    outputs: dict[tuple[str, str, str], Path]


def _find_image(folder: Path, stem: str) -> Path | None:
    for ext in images.IMAGE_EXTENSIONS:
        for candidate in (folder / f"{stem}{ext}", folder / f"{stem}{ext.upper()}"):
            if candidate.is_file():
                return candidate
    return None


def find_inputs(folder: Path) -> dict[str, Path]:
    """Input faces `<face_id>.<png|jpg|jpeg>`, keyed by face id."""
    if not folder.is_dir():
        raise StudyBuildError(f"inputs folder not found: {folder}")
    faces = {p.stem: p for p in sorted(folder.iterdir())
             if p.is_file() and p.suffix.lower() in images.IMAGE_EXTENSIONS}
    if not faces:
        raise StudyBuildError(f"no input images (.png/.jpg/.jpeg) in {folder}")
    bad = sorted(f for f in faces if not FACE_RE.match(f))
    if bad:
        raise StudyBuildError("face ids may hold only letters, digits, '_', '.', '-': " + ", ".join(map(repr, bad)))
    return faces


def find_output(method_dir: Path, face_id: str, expression: str) -> Path | None:
    """A method's output for a face and expression: `<face>/<expression>.<ext>` or `<face>_<expression>.<ext>`."""
    return _find_image(method_dir / face_id, expression) or _find_image(method_dir, f"{face_id}_{expression}")


def collect_stimuli(spec: StudySpec) -> Stimuli:
    """Find every source image, or raise one error that lists everything missing."""
    problems: list[str] = []
    if len(spec.methods) < 2:
        problems.append("at least 2 methods are needed (--method NAME=DIR, repeated)")
    for name, folder in spec.methods.items():
        if not NAME_RE.match(name) or name == CATCH_LABEL:
            problems.append(f"invalid method name {name!r} (letters, digits, _.+- ; not {CATCH_LABEL!r})")
        if not folder.is_dir():
            problems.append(f"method {name}: folder not found: {folder}")
    unknown = sorted(set(spec.expressions) - set(EXPRESSIONS))
    if unknown:
        problems.append(f"unknown expressions {unknown}; known: {', '.join(EXPRESSIONS)}")
    if problems:
        raise StudyBuildError("cannot build the study:\n  " + "\n  ".join(problems))

    inputs = find_inputs(spec.inputs)
    outputs: dict[tuple[str, str, str], Path] = {}
    missing: list[str] = []
    for name, folder in sorted(spec.methods.items()):
        for face in inputs:
            for expression in spec.expressions:
                found = find_output(folder, face, expression)
                if found is None:
                    missing.append(f"{name}: face {face}, expression {expression}")
                else:
                    outputs[(name, face, expression)] = found
    if missing:
        raise StudyBuildError(
            f"{len(missing)} output image(s) missing (expected <method dir>/<face>/<expression>.png "
            f"or <method dir>/<face>_<expression>.png):\n  " + "\n  ".join(missing))
    unknown_faces = sorted(set(spec.groups) - set(inputs))
    if unknown_faces:
        raise StudyBuildError("groups name faces that are not inputs: " + ", ".join(unknown_faces))
    return Stimuli(inputs, outputs)


def study_options(spec: StudySpec) -> dict[str, Any]:
    """The options stored with the study and read by the participant page."""
    return {
        "catch_trials": spec.catch_trials,
        "trials_per_participant": spec.trials_per_participant,
        "completion_code": spec.completion_code or secrets.token_hex(4).upper(),
        "failed_checks_code": spec.failed_checks_code,
        "exclude_after_failed_checks": spec.exclude_after_failed_checks,
        "redirect_url": spec.redirect_url,
        "image_size": spec.image_size,
    }


def build_study(spec: StudySpec, db: StudyDB) -> int:
    """Check, re-encode and record a study; returns its id. Images go to `<out>/images/<random>.png`."""
    if not NAME_RE.match(spec.name):
        raise StudyBuildError(f"invalid study name {spec.name!r}")
    if spec.catch_trials < 0 or spec.image_size < 16:
        raise StudyBuildError("catch_trials must be >= 0 and image_size >= 16")
    with db.read() as s:
        if s.scalar(select(Study.id).where(Study.name == spec.name)) is not None:
            raise StudyBuildError(f"a study named {spec.name!r} already exists in {db.path}; pick another --name")
    stimuli = collect_stimuli(spec)
    out = spec.out.resolve()
    images_dir = out / "images"
    size = spec.image_size
    seed = spec.seed if spec.seed is not None else secrets.randbits(31)

    # Encode and store every file before taking the write lock, so other writers are not held up.
    written: list[Path] = []

    def put(data: bytes) -> str:
        token = images.store(data, images_dir)
        written.append(images_dir / token)
        return token

    try:
        input_tokens: dict[str, tuple[str, str]] = {}
        input_bytes: dict[str, bytes] = {}
        for face, path in stimuli.inputs.items():
            input_bytes[face] = data = images.reencode_png(path, size)
            # The catch copy is a second file of the same bytes: nothing on disk marks it as the copy.
            input_tokens[face] = (put(data), put(data))
        output_tokens: dict[tuple[str, str, str], tuple[str, bool]] = {}
        for (name, face, expression), path in stimuli.outputs.items():
            data = images.reencode_png(path, size)
            output_tokens[(name, face, expression)] = (put(data), data == input_bytes[face])
        with db.write() as s:
            study = Study(name=spec.name, seed=seed, image_dir=str(out), methods=sorted(spec.methods),
                          options=study_options(spec))
            s.add(study)
            s.flush()
            for face, (input_token, catch_token) in input_tokens.items():
                s.add(Candidate(study_id=study.id, face_id=face, label=CATCH_LABEL, token=catch_token,
                                matches_input=True))
                for expression in spec.expressions:
                    item = Item(study_id=study.id, key=f"{face}:{expression}", face_id=face, expression=expression,
                                item_group=spec.groups.get(face, ""), input_token=input_token)
                    item.candidates = [
                        Candidate(study_id=study.id, face_id=face, label=name,
                                  token=output_tokens[(name, face, expression)][0],
                                  matches_input=output_tokens[(name, face, expression)][1])
                        for name in sorted(spec.methods)]
                    s.add(item)
            s.flush()
            return study.id
    except BaseException as err:
        for path in written:
            path.unlink(missing_ok=True)
        if isinstance(err, IntegrityError):
            raise StudyBuildError(f"a study named {spec.name!r} already exists in {db.path}") from err
        raise


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
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise StudyBuildError(f"{path}: expected a mapping at the top level")
    base = path.resolve().parent

    def rel(value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else base / p

    fields: dict[str, Any] = {}
    for key, value in raw.items():
        if key in ("inputs", "out"):
            fields[key] = rel(value)
        elif key == "methods":
            fields[key] = {str(n): rel(d) for n, d in value.items()}
        elif key == "groups":
            fields[key] = (read_groups(rel(value)) if isinstance(value, str)
                           else {str(k): str(v) for k, v in value.items()})
        elif key == "expressions":
            fields[key] = tuple(value)
        elif key in StudySpec.__dataclass_fields__:
            fields[key] = value
        else:
            raise StudyBuildError(f"{path}: unknown key {key!r}")
    return fields


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(prog="python -m study_app.build", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, help="YAML study file (flags given here override it)")
    ap.add_argument("--inputs", type=Path, help="folder of input faces <face_id>.<png|jpg|jpeg>")
    ap.add_argument("--method", type=parse_method, action="append", default=[], metavar="NAME=DIR",
                    help="a compared method and its output folder (2 or more)")
    ap.add_argument("--out", type=Path, help="study folder the re-encoded images are written to")
    ap.add_argument("--db", type=Path, help="SQLite file (default: $USGAN_STUDY_DB or <repo>/var/study.sqlite)")
    ap.add_argument("--name", help="study name (unique in the database)")
    ap.add_argument("--seed", type=int, help="randomization seed (default: random, stored)")
    ap.add_argument("--expressions", help="comma-separated target expressions (default: all 7)")
    ap.add_argument("--groups", type=Path, help="CSV face_id,item_group (e.g. in/out of the training set)")
    ap.add_argument("--catch-trials", type=int, help="catch trials per participant (default 2)")
    ap.add_argument("--trials-per-participant", type=int, help="items each participant sees (default: all)")
    ap.add_argument("--completion-code", help="code shown at the end / sent to Prolific (default: random)")
    ap.add_argument("--failed-checks-code", help="code for participants who failed too many catch trials")
    ap.add_argument("--exclude-after-failed-checks", type=int, help="failed catch trials that exclude (default 2)")
    ap.add_argument("--redirect-url", help="completion URL with {code}; Prolific participants get Prolific's")
    ap.add_argument("--image-size", type=int, help="side of every re-encoded image in pixels (default 256)")
    args = ap.parse_args(argv)

    try:
        fields = spec_from_yaml(args.config) if args.config else {}
        for key in ("inputs", "out", "name", "seed", "catch_trials", "trials_per_participant", "completion_code",
                    "failed_checks_code", "exclude_after_failed_checks", "redirect_url", "image_size"):
            if getattr(args, key) is not None:
                fields[key] = getattr(args, key)
        if args.method:
            fields["methods"] = dict(args.method)
        if args.expressions:
            fields["expressions"] = tuple(e.strip() for e in args.expressions.split(",") if e.strip())
        if args.groups:
            fields["groups"] = read_groups(args.groups)
        absent = [k for k in ("inputs", "methods", "out") if k not in fields]
        if absent:
            ap.error("missing " + ", ".join("--" + k.rstrip("s") if k == "methods" else "--" + k for k in absent))
        spec = StudySpec(**fields)
        db = open_db(args.db)
        study_id = build_study(spec, db)
    except StudyBuildError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    with db.read() as s:
        study = s.get(Study, study_id)
        assert study is not None
        n_items = len(study.items)
        print(f"built study {study.name!r} (id {study_id}, seed {study.seed}) in {db.path}: {n_items} items, "
              f"{len(spec.methods)} methods, images in {study.image_dir}/images; "
              f"completion code {study.options['completion_code']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
