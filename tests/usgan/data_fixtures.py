"""Dataset trees as distributed, with the real names, drawn from synthetic faces so every file's truth is known.

Each builder returns a Tree: its `--data` spec, the truth of every file training should read (identity and
expression), and the figures the data check must report.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from usgan.data.cfee import PUBLISHED, SUMMARY_XLS
from usgan.data.expressions import EXPRESSIONS, FOLDER_CODES, to_label
from usgan.data.synthetic import render_face

SIZE = 64
KDEF_CODES = {"afraid": "AF", "angry": "AN", "disgusted": "DI", "happy": "HA", "neutral": "NE", "sad": "SA",
              "surprised": "SU"}
RAFD_NAMES = {"afraid": "fearful", "angry": "angry", "disgusted": "disgusted", "happy": "happy",
              "neutral": "neutral", "sad": "sad", "surprised": "surprised"}


@dataclass
class Tree:
    spec: str
    truth: dict = field(default_factory=dict)      # path -> (identity, expression) of every file to be read
    images: int = 0
    subjects: int = 0
    skipped: dict = field(default_factory=dict)    # reason fragment -> count
    labels_from: str = ""
    subject_disjoint: bool = True


@lru_cache(maxsize=None)
def _face(identity: int, expression: str):
    return render_face(identity, expression, seed=0, size=SIZE)


def _save(path: Path, identity: int, expression: str, tree: Tree | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    face = _face(identity, expression)
    face.save(path, quality=95) if path.suffix.lower() in (".jpg", ".jpeg") else face.save(path)
    if tree is not None:
        tree.truth[str(path)] = (identity, expression)
        tree.images += 1


def write_summary_sheet(path: Path, names: dict) -> None:
    """A real BIFF .xls with a `summary` sheet naming each category, AU numbers beside the names."""
    import xlwt

    book = xlwt.Workbook()
    book.add_sheet("AU_per_image").write(0, 0, "image")
    sheet = book.add_sheet("summary")
    for col, head in enumerate(("Category", "Expression", "AU", "AU", "AU")):
        sheet.write(0, col, head)
    for row, (code, name) in enumerate(sorted(names.items()), start=1):
        sheet.write(row, 0, code)
        sheet.write(row, 1, name.capitalize())
        for col, au in enumerate((4, 12, 25), start=2):   # numbers right of the name are AUs, never codes
            sheet.write(row, col, au)
    book.save(str(path))


def cfee_release(base: Path, subjects=(126, 110, 7, 42), sheet: dict | None = None, with_sheet=True) -> Tree:
    """CFEE_Database_230/<range>/Images<k>/<CC>_<SSS>_<serial>.jpg over all 22 categories; `sheet` overrides names."""
    root = base / "CFEE_Database_230"
    names = sheet or {i + 1: n for i, n in enumerate(PUBLISHED)}
    tree = Tree(f"cfee:{root}", subjects=len(subjects), skipped={"compound": 15 * len(subjects)},
                labels_from=SUMMARY_XLS if with_sheet else "published order")
    serial = 2000
    for code in range(1, 23):
        first = (code - 1) // 4 * 4 + 1
        folder = f"{first:02d}-{min(first + 3, 22):02d}"
        for k, s in enumerate(subjects):
            serial += 1
            expr = EXPRESSIONS[to_label(names[code])] if code <= 7 else "neutral"
            path = root / folder / f"Images{k % 3 + 1}" / f"{code:02d}_{s:03d}_{serial}.jpg"
            _save(path, s, expr, tree if code <= 7 else None)
    if with_sheet:
        write_summary_sheet(root / SUMMARY_XLS, names)
    return tree


def kdef_and_akdef(base: Path) -> Tree:
    """KDEF_and_AKDEF/KDEF/<AF01>/AF01HAS.JPG in five angles, beside AKDEF's averaged faces (AKDEF/AFHAS.JPG)."""
    root = base / "KDEF_and_AKDEF"
    people = [("A", "F", "01", 1001), ("B", "F", "01", 1001), ("A", "M", "02", 1002), ("B", "M", "02", 1002),
              ("A", "F", "03", 1003)]
    tree = Tree(f"kdef:{root}", subjects=3, labels_from="KDEF expression codes",
                skipped={"angle": len(people) * 7 * 4, "AKDEF": 2 * 7})
    for sess, g, n, ident in people:
        for expr, code in KDEF_CODES.items():
            for angle in ("FL", "HL", "S", "HR", "FR"):
                _save(root / "KDEF" / f"{sess}{g}{n}" / f"{sess}{g}{n}{code}{angle}.JPG", ident, expr,
                      tree if angle == "S" else None)
    for g, ident in (("F", 1101), ("M", 1102)):
        for expr, code in KDEF_CODES.items():
            _save(root / "AKDEF" / f"A{g}{code}S.JPG", ident, expr)
    (root / "ReadThis.txt").write_text("KDEF and AKDEF\n")
    return tree


def rafd(base: Path) -> Tree:
    """Rafd<cam>_<id>_<ethnicity>_<gender>_<expression>_<gaze>.jpg: two cameras, three gazes, eight expressions."""
    root = base / "RaFD"
    tree = Tree(f"rafd:{root}", subjects=3, labels_from="RaFD expression names",
                skipped={"contempt": 3 * 2 * 3, "camera": 3 * 7 * 3, "gaze": 3 * 7 * 2})
    for sid, ident in (("01", 2001), ("02", 2002), ("03", 2003)):
        for expr in [*RAFD_NAMES.values(), "contemptuous"]:
            shown = next((k for k, v in RAFD_NAMES.items() if v == expr), "neutral")
            for cam in ("090", "045"):
                for gaze in ("frontal", "left", "right"):
                    read = cam == "090" and gaze == "frontal" and expr != "contemptuous"
                    _save(root / f"Rafd{cam}_{sid}_Caucasian_female_{expr}_{gaze}.jpg", ident, shown,
                          tree if read else None)
    return tree


def authors_layout(base: Path, per_folder: int = 4) -> Tree:
    """AFS/1.png ... SUS/4.png: a number per file and folder, a different person behind each."""
    root = base / "authors"
    tree = Tree(f"folder:{root}", subjects=7 * per_folder, labels_from="folder names", subject_disjoint=False)
    for k, code in enumerate(FOLDER_CODES):
        for n in range(1, per_folder + 1):
            _save(root / code / f"{n}.png", 3000 + 10 * k + n, EXPRESSIONS[k], tree)
    return tree


def every_layout(base: Path) -> list[Tree]:
    """The five trees, their CFEE subjects distinct so the two CFEE sources never share a person."""
    return [cfee_release(base / "cfee", subjects=(126, 110, 7, 42)),
            cfee_release(base / "cfee_nosheet", subjects=(201, 202, 203), with_sheet=False),
            kdef_and_akdef(base), rafd(base), authors_layout(base)]
