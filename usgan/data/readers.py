"""One reader per dataset layout; each turns a folder or manifest into Records, never touching pixels.

    records = read_kdef("/data/KDEF")              # frontal (S) images by default
    records = read_manifest("/data/x.csv")         # columns path, expression[, subject]

sources.read_source picks the reader a 'kind:path' source names (CFEE's, in cfee.py, builds on these).
"""
from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DatasetError, NumberedExpression, UnknownExpression
from .expressions import is_excluded, to_label

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
KDEF_NAME = re.compile(r"^([AB])([FM])(\d{2})(AF|AN|DI|HA|NE|SA|SU)(FL|FR|HL|HR|S)$", re.I)
RAFD_NAME = re.compile(r"^Rafd(\d{3})_(\d{2})_([A-Za-z]+)_(female|male)_([a-z]+)_(frontal|left|right)$", re.I)
CFEE_NAME = re.compile(r"^(\d{2})_(\d{3})_(\d+)$")   # category, subject, serial: 01_126_3963
PER_IMAGE = "each image its own subject"              # how the data report names a split that is not by person


@dataclass(frozen=True)
class Record:
    path: str
    label: int
    subject: str   # namespaced by source, so identities of two datasets never merge
    source: str



@dataclass
class ReadLog:
    """One source's reading: its records, the files left out by reason, how subjects and labels were read."""
    spec: str
    records: list = field(default_factory=list)
    skipped: dict = field(default_factory=dict)          # reason -> file names
    subjects_from: Counter = field(default_factory=Counter)   # how -> images
    labels_from: str = ""
    error: str | None = None

    def skip(self, reason: str, name: str) -> None:
        self.skipped.setdefault(reason, []).append(name)


def _images(root: Path):
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTS)


def _require_dir(root: Path, kind: str) -> None:
    if not root.exists():
        raise DatasetError(f"{kind} folder {root} does not exist; pass the folder that holds your copy of {kind}")
    if not root.is_dir():
        raise DatasetError(f"{kind} path {root} is not a folder; pass the dataset's top folder")


def _fail_on_bad(bad: list[str], root: Path, what: str, fix: str, skip_bad: bool, log: ReadLog) -> None:
    if bad and not skip_bad:
        eg = ", ".join(bad[:3])
        raise DatasetError(f"{len(bad)} file(s) in {root} {what} (e.g. {eg}); {fix}, or pass --skip-bad to leave them out")
    for name in bad:
        log.skip(f"{what} (--skip-bad)", name)


def read_kdef(root, angles=("S",), skip_bad=False, log: ReadLog | None = None) -> list[Record]:
    """KDEF by file name, e.g. AF01ANS.JPG: session, gender, subject, expression, angle.

    The release root KDEF_and_AKDEF holds KDEF/ and AKDEF/ (averaged faces named another way): only KDEF/ is read.
    """
    root, log = Path(root), log or ReadLog(f"kdef:{root}")
    _require_dir(root, "KDEF")
    inner = [d for d in root.iterdir() if d.is_dir() and d.name.upper() == "KDEF"]
    if inner:
        for p in _images(root):
            if inner[0] not in p.parents:
                top = p.relative_to(root).parts[0]
                log.skip("AKDEF: averaged faces, not KDEF's photographs" if top.upper() == "AKDEF"
                         else "outside the KDEF folder", str(p.relative_to(root)))
        root = inner[0]
    angles = {a.upper() for a in angles}
    out, bad = [], []
    for p in _images(root):
        m = KDEF_NAME.match(p.stem)
        if not m:
            bad.append(p.name)
            continue
        _, gender, num, expr, angle = m.groups()
        if angle.upper() not in angles:
            log.skip(f"angle not in data.kdef_angles {sorted(angles)}", p.name)
            continue
        # Sessions A and B photograph the same person: the subject is gender + number.
        out.append(Record(str(p), to_label(expr), f"kdef:{gender.upper()}{num}", "kdef"))
    log.subjects_from["KDEF file name: gender + number (series A and B are one person)"] += len(out)
    log.labels_from = "KDEF expression codes in the file names (AF AN DI HA NE SA SU)"
    _fail_on_bad(bad, root, "do not follow KDEF naming like AF01ANS.JPG", "rename or remove them", skip_bad, log)
    return _nonempty(out, root, "KDEF", f"angles {sorted(angles)}")


def read_rafd(root, angles=("090",), gazes=("frontal",), skip_bad=False, log: ReadLog | None = None) -> list[Record]:
    """RaFD by file name, e.g. Rafd090_01_Caucasian_female_angry_frontal.jpg; contempt is left out."""
    root, log = Path(root), log or ReadLog(f"rafd:{root}")
    _require_dir(root, "RaFD")
    out, bad = [], []
    for p in _images(root):
        m = RAFD_NAME.match(p.stem)
        if not m:
            bad.append(p.name)
            continue
        angle, subject, _, _, expr, gaze = m.groups()
        if is_excluded(expr):
            log.skip("contempt: not one of the seven", p.name)
            continue
        try:
            label = to_label(expr)
        except UnknownExpression:
            bad.append(p.name)
            continue
        if angle not in angles:
            log.skip(f"camera angle not in data.rafd_angles {list(angles)}", p.name)
        elif gaze.lower() not in gazes:
            log.skip(f"gaze not in data.rafd_gazes {list(gazes)}", p.name)
        else:
            out.append(Record(str(p), label, f"rafd:{subject}", "rafd"))
    log.subjects_from["RaFD file name: subject number"] += len(out)
    log.labels_from = "RaFD expression names in the file names"
    _fail_on_bad(bad, root, "do not follow RaFD naming like Rafd090_01_Caucasian_female_angry_frontal.jpg",
                 "rename or remove them", skip_bad, log)
    return _nonempty(out, root, "RaFD", f"camera angles {list(angles)} and gazes {list(gazes)}")


def subject_of(stem: str) -> tuple[str | None, str]:
    """(subject, how it was read) from a file name; None when the name names no person."""
    if m := KDEF_NAME.match(stem):
        return f"{m.group(2).upper()}{m.group(3)}", "KDEF file name: gender + number"
    if m := RAFD_NAME.match(stem):
        return m.group(2), "RaFD file name: subject number"
    if m := CFEE_NAME.match(stem):
        return m.group(2), "CFEE file name CC_SSS_serial: SSS"
    if stem.isdigit():
        return None, f"{PER_IMAGE}: a file number names no person"
    if m := re.match(r"^([^_\-]+)[_\-]", stem):
        return m.group(1), "file name before the first '_' or '-'"
    return None, f"{PER_IMAGE}: the file name has no subject part"


def _record(p: Path, label: int, source: str, root: Path, log: ReadLog, subject: str | None = None) -> Record:
    """A record whose subject is given, else read from the file name, else the image itself."""
    how = "the manifest's subject column"
    if not subject:
        subject, how = subject_of(p.stem)
        subject = subject or (p.relative_to(root) if p.is_relative_to(root) else p).with_suffix("").as_posix()
    log.subjects_from[how] += 1
    return Record(str(p), label, f"{source}:{subject}", source)


def _label(name: str, codes, where: str) -> tuple[int | None, str]:
    """(label, "") of an expression name, or of a CFEE category code when `codes` is CFEE's table; (None, why) when
    the category is left out."""
    if codes is not None and name.strip().isdigit():
        return codes.label(int(name))
    if is_excluded(name):
        return None, "a compound category or contempt: not one of the seven"
    try:
        return to_label(name), ""
    except NumberedExpression:
        raise DatasetError(
            f"{where} names expressions by number ('{name}'), which would mislabel them: numbers mean different "
            "things in different datasets; write the names (happy, sad, ...), or read it as cfee:PATH if the "
            "numbers are CFEE's category codes (01 neutral, 02 happy, ...)") from None


def read_manifest(csv_path, source="manifest", skip_bad=False, log: ReadLog | None = None, codes=None) -> list[Record]:
    """A CSV with columns path, expression and optionally subject; paths relative to the CSV's folder.

    Numbers in the expression column are read only with `codes` (CFEE's category table); otherwise refused.
    """
    csv_path, log = Path(csv_path), log or ReadLog(f"{source}:{csv_path}")
    if not csv_path.is_file():
        raise DatasetError(f"manifest {csv_path} does not exist; write a CSV with columns path,expression,subject")
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    cols = {c.strip().lower() for c in (rows[0].keys() if rows else [])}
    if not {"path", "expression"} <= cols:
        raise DatasetError(f"manifest {csv_path} needs columns path,expression[,subject]; it has {sorted(cols) or 'none'}")
    log.labels_from = codes.source if codes is not None else "the manifest's expression column"
    out, bad = [], []
    for i, row in enumerate(rows, start=2):
        row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
        try:
            label, why = _label(row["expression"], codes, f"manifest {csv_path} (line {i})")
        except UnknownExpression as e:
            bad.append(f"line {i}: {e}")
            continue
        if label is None:
            log.skip(why, row["path"])
            continue
        p = Path(row["path"])
        p = p if p.is_absolute() else csv_path.parent / p
        if not p.is_file():
            bad.append(f"line {i}: missing file {row['path']}")
            continue
        out.append(_record(p, label, source, csv_path.parent, log, row.get("subject")))
    _fail_on_bad(bad, csv_path, "has rows that cannot be used", "fix those rows", skip_bad, log)
    return _nonempty(out, csv_path, "manifest", "its rows")


def read_expression_folders(root, source="folder", skip_bad=False, log: ReadLog | None = None,
                            codes=None) -> list[Record]:
    """One folder per expression (authors' AFS..SUS codes or names like happy/); subject from file names.

    Numbered folders are read only with `codes` (CFEE's category table); otherwise refused.
    """
    root, log = Path(root), log or ReadLog(f"{source}:{root}")
    _require_dir(root, source)
    log.labels_from = codes.source if codes is not None else "folder names"
    out, unknown = [], []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        try:
            label, why = _label(d.name, codes, f"{root} (folder {d.name}/)")
        except UnknownExpression:
            unknown.append(d.name + "/")
            continue
        if label is None:
            for p in _images(d):
                log.skip(why, str(p.relative_to(root)))
            continue
        out += [_record(p, label, source, root, log) for p in _images(d)]
    if unknown and not out:
        raise DatasetError(
            f"{root} has no expression folders (found {', '.join(unknown[:4])}); expected one folder per expression, "
            "named AFS ANS DIS HAS NES SAS SUS or afraid angry ... surprised")
    _fail_on_bad(unknown, root, "are folders with no known expression name", "rename them", skip_bad, log)
    return _nonempty(out, root, source, "its expression folders")


def _nonempty(records, root, kind, selection) -> list[Record]:
    if not records:
        raise DatasetError(f"no usable {kind} images in {root} for {selection}; check the path and the layout "
                           "(docs/data.md), or run usgan-data check")
    return records
