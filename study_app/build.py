"""Study builder: check the stimulus folders, re-encode images under random tokens, record the manifest in SQLite.

    python -m study_app.build --inputs DIR --method NAME=DIR --method NAME=DIR ... --out STUDY_DIR
    python -m study_app.build --config study.yaml
    python -m study_app.build --config study.yaml --bundle studies/study1   # study.sqlite + images, movable
    python -m study_app.build --config study.yaml --bundle studies/study1 --pilot   # its pilot, beside it
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from study_app import images
from study_app.db import StudyDB, open_db
from study_app.information import TEXT_KINDS, estimate, read_text_file, text_record
from study_app.models import Candidate, Item, PriorParticipant, Study
from study_app.settings import CATCH_LABEL, EXPRESSIONS
from study_app.spec import (NAME_RE, PROLIFIC_ID_RE, StudyBuildError, StudySpec, check_settings, participant_link,
                            study_options)
from study_app.study_file import add_setting_flags, flag_settings, pilot_fields, spec_from_yaml

__all__ = ["StudyBuildError", "StudySpec", "build_study", "main"]

METHOD_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")
FACE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class Stimuli:
    """Source files found for a spec: inputs per face, outputs per (method, face, expression)."""

    inputs: dict[str, Path]
    outputs: dict[tuple[str, str, str], Path]


def _find_images(folder: Path, stem: str) -> list[Path]:
    """Every `<stem>.<png|jpg|jpeg>` in folder, any case of the extension."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if p.stem == stem and p.suffix.lower() in images.IMAGE_EXTENSIONS and p.is_file())


def find_inputs(folder: Path) -> dict[str, Path]:
    """Input faces `<face_id>.<png|jpg|jpeg>`, keyed by face id."""
    if not folder.is_dir():
        raise StudyBuildError(f"inputs folder not found: {folder}")
    files = [p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in images.IMAGE_EXTENSIONS]
    faces = {p.stem: p for p in files}
    twice = sorted({p.name for p in files if sum(q.stem == p.stem for q in files) > 1})
    if twice:
        raise StudyBuildError("two input files for one face id (keep one): " + ", ".join(twice))
    if not faces:
        raise StudyBuildError(f"no input images (.png/.jpg/.jpeg) in {folder}")
    bad = sorted(f for f in faces if not FACE_RE.match(f))
    if bad:
        raise StudyBuildError("face ids may hold only letters, digits, '_', '.', '-': " + ", ".join(map(repr, bad)))
    return faces


def find_output(method_dir: Path, face_id: str, expression: str) -> list[Path]:
    """A method's outputs for a face and expression: `<face>/<expression>.<ext>`, `<face>_<expression>.<ext>`."""
    return _find_images(method_dir / face_id, expression) + _find_images(method_dir, f"{face_id}_{expression}")


def collect_stimuli(spec: StudySpec) -> Stimuli:
    """Find every source image, or raise one error that lists everything missing."""
    problems: list[str] = []
    if len(spec.methods) < 2:
        problems.append("at least 2 methods are needed (--method NAME=DIR, repeated)")
    for name, folder in spec.methods.items():
        if not METHOD_RE.match(name) or name == CATCH_LABEL:
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
    ambiguous: list[str] = []
    for name, folder in sorted(spec.methods.items()):
        for face in inputs:
            for expression in spec.expressions:
                found = find_output(folder, face, expression)
                if not found:
                    missing.append(f"{name}: face {face}, expression {expression}")
                elif len(found) > 1:
                    ambiguous.append(f"{name}: " + ", ".join(str(p.relative_to(folder)) for p in found))
                else:
                    outputs[(name, face, expression)] = found[0]
    if missing:
        raise StudyBuildError(
            f"{len(missing)} output image(s) missing (expected <method dir>/<face>/<expression>.png "
            f"or <method dir>/<face>_<expression>.png):\n  " + "\n  ".join(missing))
    if ambiguous:
        raise StudyBuildError("several files for one output (keep one of each):\n  " + "\n  ".join(ambiguous))
    unknown_faces = sorted(set(spec.groups) - set(inputs))
    if unknown_faces:
        raise StudyBuildError("groups name faces that are not inputs: " + ", ".join(unknown_faces))
    return Stimuli(inputs, outputs)


def build_study(spec: StudySpec, db: StudyDB) -> int:
    """Check, re-encode and record a study; returns its id. Images go to `<out>/images/<random>.png`."""
    if not NAME_RE.match(spec.name):
        raise StudyBuildError(f"invalid study name {spec.name!r} (letters, digits, _ . -; it goes in the URL)")
    check_settings(spec)
    with db.read() as s:
        if s.scalar(select(Study.id).where(Study.name == spec.name)) is not None:
            raise StudyBuildError(f"a study named {spec.name!r} already exists in {db.path}; pick another --name")
        known = set(s.scalars(select(Study.name)))
    unknown = sorted(set(spec.options.exclude_participants_of) - known)
    if unknown:
        raise StudyBuildError(f"exclude_participants_of names studies not in {db.path}: {', '.join(unknown)} "
                              f"(build into the same database, or list their PIDs in exclude_pids_file)")
    texts = {kind: read_text_file(getattr(spec, kind), kind) for kind in TEXT_KINDS if getattr(spec, kind)}
    prior = read_pid_file(spec.exclude_pids_file) if spec.exclude_pids_file else []
    stimuli = collect_stimuli(spec)
    check_settings(spec, len(stimuli.inputs) * len(spec.expressions))
    out = spec.out.resolve()
    images_dir = out / "images"
    size = spec.options.image_size
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
            # Relative to the database's folder, so the two can move together (a bundle, a copy to the server).
            image_dir = Path(os.path.relpath(out, db.path.resolve().parent)).as_posix()
            study = Study(name=spec.name, seed=seed, image_dir=image_dir, methods=sorted(spec.methods),
                          options=study_options(spec))
            s.add(study)
            s.flush()
            s.add_all(text_record(study.id, kind, markdown) for kind, markdown in texts.items())
            s.add_all(PriorParticipant(study_id=study.id, platform_pid=pid) for pid in prior)
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


def read_pid_file(path: Path) -> list[str]:
    """Prolific ids, one a line (blank lines and '#' comments skipped), lower-cased; StudyBuildError on a bad line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise StudyBuildError(f"cannot read exclude_pids_file {path} ({err})") from None
    pids, bad = [], []
    for number, line in enumerate(lines, 1):
        value = line.split("#", 1)[0].strip().lower()
        if value and not PROLIFIC_ID_RE.match(value):
            bad.append(str(number))
        elif value:
            pids.append(value)
    if bad:
        raise StudyBuildError(f"{path}: lines {', '.join(bad[:10])} are not Prolific ids (24 hex characters, "
                              f"one a line)")
    return sorted(set(pids))


def build_parser() -> argparse.ArgumentParser:
    """Command-line options: where the study goes, and a flag per setting, each overriding the same key of --config."""
    ap = argparse.ArgumentParser(prog="python -m study_app.build", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, metavar="PATH", help="YAML study file (flags given here override it)")
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--db", type=Path, metavar="PATH",
                       help="SQLite file (default: $USGAN_STUDY_DB or <repo>/var/study.sqlite)")
    where.add_argument("--bundle", type=Path, metavar="DIR",
                       help="self-contained study folder: DIR/study.sqlite and DIR/images (replaces --db and --out)")
    ap.add_argument("--pilot", action="store_true",
                    help="build the pilot of --config: named <name>-pilot, recruitment pilot, without the "
                         "Prolific settings, 5 places; its finishers measure the study's pace")
    add_setting_flags(ap)
    return ap


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.bundle is not None:
        if args.out is not None:
            ap.error("--bundle DIR already sets the image folder; drop --out")
        args.out, args.db = args.bundle, args.bundle / "study.sqlite"
    try:
        settings = spec_from_yaml(args.config) if args.config else {}
        if args.pilot:
            settings = pilot_fields(settings)
        settings.update(flag_settings(args))
        absent = [k for k in ("inputs", "methods", "out") if k not in settings]
        if absent:
            ap.error("missing " + ", ".join("--" + k.rstrip("s") if k == "methods" else "--" + k for k in absent))
        spec = StudySpec.from_settings(settings)
        db = open_db(args.db)
        study_id = build_study(spec, db)
    except StudyBuildError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    with db.read() as s:
        study = s.get(Study, study_id)
        assert study is not None
        print(f"built study {study.name!r} (id {study_id}, seed {study.seed}) in {db.path}: {len(study.items)} "
              f"items, {len(spec.methods)} methods, images in {spec.out.resolve() / 'images'}; "
              f"completion code {study.options.completion_code}; recruitment {spec.options.recruitment}")
        texts = {t.kind: t.sha256[:12] for t in study.texts}
    time = estimate(db, study_id)
    print(f"estimated duration: about {time.minutes} minutes for {time.screens} screens (pace {time.source}); "
          f"texts: {', '.join(f'{k} sha256 {h}' for k, h in sorted(texts.items())) or 'the default consent'}")
    print(f"participant link: {participant_link(study.name, spec.options.recruitment)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
