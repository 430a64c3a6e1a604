"""One reader per dataset layout; each turns a folder or manifest into Records, never touching pixels.

    records = read_source("kdef:/data/KDEF")        # frontal (S) images by default
    records = read_source("rafd:/data/RaFD", rafd_angles=["090"], rafd_gazes=["frontal"])
    records = read_source("cfee:/data/CFEE")        # manifest.csv inside, or one folder per expression
    records = read_source("folder:/data/mine")      # AFS/ANS/.../SUS or happy/sad/... folders
    records = read_source("manifest:/data/x.csv")   # columns path, expression[, subject]
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from .expressions import UnknownExpression, is_excluded, to_label

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
KDEF_NAME = re.compile(r"^([AB])([FM])(\d{2})(AF|AN|DI|HA|NE|SA|SU)(FL|FR|HL|HR|S)$", re.I)
RAFD_NAME = re.compile(r"^Rafd(\d{3})_(\d{2})_([A-Za-z]+)_(female|male)_([a-z]+)_(frontal|left|right)$", re.I)


@dataclass(frozen=True)
class Record:
    path: str
    label: int
    subject: str   # namespaced by source, so identities of two datasets never merge
    source: str


class DatasetError(ValueError):
    """A dataset folder or manifest that cannot be read; the message names the problem and the fix."""


def _images(root: Path):
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTS)


def _require_dir(root: Path, kind: str) -> None:
    if not root.exists():
        raise DatasetError(f"{kind} folder {root} does not exist; pass the folder that holds your copy of {kind}")
    if not root.is_dir():
        raise DatasetError(f"{kind} path {root} is not a folder; pass the dataset's top folder")


def _fail_on_bad(bad: list[str], root: Path, what: str, fix: str, skip_bad: bool) -> None:
    if bad and not skip_bad:
        eg = ", ".join(bad[:3])
        raise DatasetError(f"{len(bad)} file(s) in {root} {what} (e.g. {eg}); {fix}, or pass --skip-bad to leave them out")


def read_kdef(root, angles=("S",), skip_bad=False) -> list[Record]:
    """KDEF by file name, e.g. AF01ANS.JPG: session, gender, subject, expression, angle."""
    root = Path(root)
    _require_dir(root, "KDEF")
    angles = {a.upper() for a in angles}
    out, bad = [], []
    for p in _images(root):
        m = KDEF_NAME.match(p.stem)
        if not m:
            bad.append(p.name)
            continue
        _, gender, num, expr, angle = m.groups()
        if angle.upper() in angles:
            # Sessions A and B photograph the same person: the subject is gender + number.
            out.append(Record(str(p), to_label(expr), f"kdef:{gender.upper()}{num}", "kdef"))
    _fail_on_bad(bad, root, "do not follow KDEF naming like AF01ANS.JPG", "rename or remove them", skip_bad)
    return _nonempty(out, root, "KDEF", f"angles {sorted(angles)}")


def read_rafd(root, angles=("090",), gazes=("frontal",), skip_bad=False) -> list[Record]:
    """RaFD by file name, e.g. Rafd090_01_Caucasian_female_angry_frontal.jpg; contempt is left out."""
    root = Path(root)
    _require_dir(root, "RaFD")
    out, bad = [], []
    for p in _images(root):
        m = RAFD_NAME.match(p.stem)
        if not m:
            bad.append(p.name)
            continue
        angle, subject, _, _, expr, gaze = m.groups()
        if is_excluded(expr):
            continue
        try:
            label = to_label(expr)
        except UnknownExpression:
            bad.append(p.name)
            continue
        if angle in angles and gaze.lower() in gazes:
            out.append(Record(str(p), label, f"rafd:{subject}", "rafd"))
    _fail_on_bad(bad, root, "do not follow RaFD naming like Rafd090_01_Caucasian_female_angry_frontal.jpg",
                 "rename or remove them", skip_bad)
    return _nonempty(out, root, "RaFD", f"camera angles {list(angles)} and gazes {list(gazes)}")


def read_manifest(csv_path, source="manifest", skip_bad=False) -> list[Record]:
    """A CSV with columns path, expression and optionally subject; paths relative to the CSV's folder."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise DatasetError(f"manifest {csv_path} does not exist; write a CSV with columns path,expression,subject")
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    cols = {c.strip().lower() for c in (rows[0].keys() if rows else [])}
    if not {"path", "expression"} <= cols:
        raise DatasetError(f"manifest {csv_path} needs columns path,expression[,subject]; it has {sorted(cols) or 'none'}")
    out, bad = [], []
    for i, row in enumerate(rows, start=2):
        row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
        if is_excluded(row["expression"]):
            continue
        try:
            label = to_label(row["expression"])
        except UnknownExpression as e:
            bad.append(f"line {i}: {e}")
            continue
        p = Path(row["path"])
        p = p if p.is_absolute() else csv_path.parent / p
        if not p.is_file():
            bad.append(f"line {i}: missing file {row['path']}")
            continue
        out.append(Record(str(p), label, f"{source}:{row.get('subject') or p.stem}", source))
    _fail_on_bad(bad, csv_path, "has rows that cannot be used", "fix those rows", skip_bad)
    return _nonempty(out, csv_path, "manifest", "its rows")


def _subject_from_name(stem: str) -> str:
    """Dataset names carry the subject; otherwise the part before the first '_' or '-' (id017_HAS -> id017)."""
    if m := KDEF_NAME.match(stem):
        return f"{m.group(2).upper()}{m.group(3)}"
    if m := RAFD_NAME.match(stem):
        return m.group(2)
    return re.split(r"[_\-]", stem, maxsplit=1)[0] or stem


def read_expression_folders(root, source="folder", skip_bad=False) -> list[Record]:
    """One folder per expression (authors' AFS..SUS codes or names like happy/); subject from file names."""
    root = Path(root)
    _require_dir(root, source)
    out, unknown = [], []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        if is_excluded(d.name):
            continue
        try:
            label = to_label(d.name)
        except UnknownExpression:
            unknown.append(d.name + "/")
            continue
        out += [Record(str(p), label, f"{source}:{_subject_from_name(p.stem)}", source) for p in _images(d)]
    if unknown and not out:
        raise DatasetError(
            f"{root} has no expression folders (found {', '.join(unknown[:4])}); expected one folder per expression, "
            "named AFS ANS DIS HAS NES SAS SUS or afraid angry ... surprised")
    _fail_on_bad(unknown, root, "are folders with no known expression name", "rename them", skip_bad)
    return _nonempty(out, root, source, "its expression folders")


def read_cfee(root, skip_bad=False) -> list[Record]:
    """CFEE: a manifest.csv (path, expression, subject) inside the folder, else one folder per expression."""
    root = Path(root)
    _require_dir(root, "CFEE")
    for name in ("manifest.csv", "cfee.csv", "labels.csv"):
        if (root / name).is_file():
            return read_manifest(root / name, source="cfee", skip_bad=skip_bad)
    return read_expression_folders(root, source="cfee", skip_bad=skip_bad)


def _nonempty(records, root, kind, selection) -> list[Record]:
    if not records:
        raise DatasetError(f"no usable {kind} images in {root} for {selection}; check the path and the layout "
                           "(see README, 'Datasets')")
    return records


KINDS = ("kdef", "rafd", "cfee", "folder", "manifest", "synthetic")


def read_source(spec: str, kdef_angles=("S",), rafd_angles=("090",), rafd_gazes=("frontal",),
                skip_bad=False) -> list[Record]:
    """Records of one 'kind:path' source."""
    kind, sep, path = spec.partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in KINDS or kind == "synthetic":
        raise DatasetError(f"data source '{spec}' is not kind:path; kinds: {', '.join(KINDS[:-1])} (or 'synthetic')")
    readers = {
        "kdef": lambda: read_kdef(path, kdef_angles, skip_bad),
        "rafd": lambda: read_rafd(path, rafd_angles, rafd_gazes, skip_bad),
        "cfee": lambda: read_cfee(path, skip_bad),
        "folder": lambda: read_expression_folders(path, "folder", skip_bad),
        "manifest": lambda: read_manifest(path, "manifest", skip_bad),
    }
    return readers[kind]()
