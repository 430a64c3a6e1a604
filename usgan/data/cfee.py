"""CFEE (Du, Tao & Martinez 2014, "Compound facial expressions of emotion") as distributed, and its category codes.

    records = read_cfee("/data/CFEE_Database_230")   # <range>/Images<k>/<CC>_<SSS>_<serial>.jpg, e.g. 01_126_3963.jpg

CC is one of 22 categories (01-07 neutral and the six basic ones, 08-22 compound), SSS the subject. The release's
AU_annotation_all_subjects.xls names the categories on its `summary` sheet; without it the paper's order is used.
A manifest or expression folders may use the codes too: they are read with CFEE's meaning only here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import DatasetError, UnknownExpression
from .expressions import ALIAS_TO_LABEL, _key, is_excluded, to_label
from .readers import (CFEE_NAME, ReadLog, Record, _fail_on_bad, _images, _nonempty, _require_dir,
                      read_expression_folders, read_manifest)

SUMMARY_XLS = "AU_annotation_all_subjects.xls"
# Du, Tao & Martinez (2014), categories 01-22.
PUBLISHED = ("neutral", "happy", "sad", "fearful", "angry", "surprised", "disgusted", "happily surprised",
             "happily disgusted", "sadly fearful", "sadly angry", "sadly surprised", "sadly disgusted",
             "fearfully angry", "fearfully surprised", "fearfully disgusted", "angrily surprised",
             "angrily disgusted", "disgustedly surprised", "appalled", "hatred", "awed")
COMPOUND = "compound category (CFEE 08-22): not one of the seven"


@dataclass(frozen=True)
class Categories:
    names: dict          # category code -> name
    source: str          # where the names came from, for the data report

    def label(self, code: int) -> tuple[int | None, str]:
        """(label, "") of a category code, or (None, why it is left out)."""
        name = self.names.get(code)
        if name is None:
            return None, f"category code outside 01-{max(self.names):02d}"
        if is_excluded(name):
            return None, COMPOUND
        try:
            return to_label(name), ""
        except UnknownExpression:
            return None, "a category the summary sheet names outside the seven"


class _Unreadable(Exception):
    """Why the summary sheet gave no category names (the published order is used instead, and the report says so)."""


def _canonical(name: str):
    """One spelling per category: the label index of a basic one, the key of a compound one; None if unknown."""
    key = _key(name)
    if key in ALIAS_TO_LABEL:
        return ALIAS_TO_LABEL[key]
    return key if is_excluded(key) else None


def _sheet_rows(path: Path) -> list[list]:
    try:
        import xlrd
    except ImportError:
        raise _Unreadable("xlrd is not installed (pip install xlrd)") from None
    try:
        book = xlrd.open_workbook(str(path))
    except Exception as e:  # xlrd raises its own XLRDError and struct/zip errors on damaged files
        raise _Unreadable(f"cannot be read ({type(e).__name__}: {e})") from None
    sheets = {n.strip().lower(): n for n in book.sheet_names()}
    if "summary" not in sheets:
        raise _Unreadable(f"has no sheet 'summary' (sheets: {', '.join(book.sheet_names())})")
    sheet = book.sheet_by_name(sheets["summary"])
    return [sheet.row_values(r) for r in range(sheet.nrows)]


def _code(cell) -> int | None:
    if isinstance(cell, float) and cell.is_integer() and 1 <= cell <= 99:
        return int(cell)
    if isinstance(cell, str) and cell.strip().isdigit() and len(cell.strip()) <= 2:
        return int(cell)
    return None


def names_from_sheet(rows: list[list]) -> tuple[dict, list]:
    """({code: name} of rows that number their category, [names of rows that do not]).

    A number counts only as the nearest filled cell left of the name (or inside it: "3. Sad"), so the AU numbers
    an annotation sheet also holds are never taken for category codes.
    """
    numbered, unnumbered = {}, []
    for row in rows:
        filled = [c for c in row if str(c).strip()]
        for i, cell in enumerate(filled):
            if not isinstance(cell, str):
                continue
            m = re.match(r"^\s*(\d{1,2})\s*[.:)_\-]?\s*([A-Za-z][A-Za-z _\-]*?)\s*$", cell)
            name, code = (m.group(2), int(m.group(1))) if m else (cell.strip(), _code(filled[i - 1]) if i else None)
            if _canonical(name) is None:
                continue
            if code is None:
                unnumbered.append(name)
            elif numbered.setdefault(code, name) != name and _canonical(numbered[code]) != _canonical(name):
                raise DatasetError(f"the summary sheet names category {code:02d} twice ({numbered[code]}, {name}); "
                                   f"fix {SUMMARY_XLS} or remove it to use the published order")
            break
    return numbered, unnumbered


def find_summary(root: Path) -> Path | None:
    """The release's annotation workbook at the root, or one folder down (the folder that holds the release)."""
    for p in [*root.glob("*.xls"), *root.glob("*/*.xls")]:
        if p.name.lower() == SUMMARY_XLS.lower():
            return p
    return None


def categories(root: Path) -> Categories:
    """Category names from the summary sheet when the release has it, else Du, Tao & Martinez's order."""
    published = {i + 1: n for i, n in enumerate(PUBLISHED)}
    path = find_summary(root)
    if path is None:
        return Categories(published, f"CFEE codes in Du, Tao & Martinez's (2014) published order: no {SUMMARY_XLS} "
                                     f"in {root}")
    try:
        numbered, unnumbered = names_from_sheet(_sheet_rows(path))
        if not numbered and not unnumbered:
            raise _Unreadable("names no category on its summary sheet")
    except _Unreadable as e:
        return Categories(published, f"CFEE codes in Du, Tao & Martinez's (2014) published order: {path} {e}")
    if numbered:
        codes = sorted(numbered)
        listed = (f"{codes[0]:02d}-{codes[-1]:02d}" if codes == list(range(codes[0], codes[-1] + 1))
                  else ", ".join(f"{c:02d}" for c in codes))
        return Categories({**published, **numbered}, f"CFEE codes named by {path}, sheet summary (codes {listed})")
    # Names without numbers can only confirm the published order, never renumber it: a sheet that leaves out
    # neutral would otherwise shift every code by one.
    order = [_canonical(n) for n in PUBLISHED]
    at = list(dict.fromkeys(order.index(_canonical(n)) for n in unnumbered))
    if at != sorted(set(at)):
        raise DatasetError(f"{path} lists categories without numbers and in another order than Du, Tao & Martinez "
                           "(2014); list CFEE in a manifest (path, expression, subject) instead: cfee:manifest.csv")
    return Categories(published, f"CFEE codes in the published order, which {path} (sheet summary) follows")


def _has_expression_folders(root: Path) -> bool:
    return any(d.is_dir() and (_canonical(d.name) is not None or d.name.isdigit()) for d in root.iterdir())


def read_cfee(root, skip_bad=False, log: ReadLog | None = None) -> list[Record]:
    """CFEE from the release tree, a manifest (a CSV path, or manifest.csv inside) or one folder per expression."""
    root, log = Path(root), log or ReadLog(f"cfee:{root}")
    if root.is_file():
        return read_manifest(root, "cfee", skip_bad, log, codes=categories(root.parent))
    _require_dir(root, "CFEE")
    for name in ("manifest.csv", "cfee.csv", "labels.csv"):
        if (root / name).is_file():
            return read_manifest(root / name, "cfee", skip_bad, log, codes=categories(root))
    if _has_expression_folders(root):
        return read_expression_folders(root, "cfee", skip_bad, log, codes=categories(root))
    cats = categories(root)
    log.labels_from = cats.source
    out, bad = [], []
    for p in _images(root):
        m = CFEE_NAME.match(p.stem)
        if not m:
            bad.append(str(p.relative_to(root)))
            continue
        label, why = cats.label(int(m.group(1)))
        if label is None:
            log.skip(why, str(p.relative_to(root)))
            continue
        out.append(Record(str(p), label, f"cfee:{m.group(2)}", "cfee"))
    log.subjects_from["CFEE file name CC_SSS_serial: SSS"] += len(out)
    _fail_on_bad(bad, root, "do not follow CFEE naming like 01_126_3963.jpg (category_subject_serial)",
                 "rename or remove them", skip_bad, log)
    return _nonempty(out, root, "CFEE", "the seven basic categories")
