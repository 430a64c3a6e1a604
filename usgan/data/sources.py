"""A 'kind:path' data source read by its dataset's reader into Records, never touching pixels.

    records = read_source("kdef:/data/KDEF")        # frontal (S) images by default
    records = read_source("rafd:/data/RaFD", rafd_angles=["090"], rafd_gazes=["frontal"])
    records = read_source("cfee:/data/CFEE_Database_230")   # the release, a manifest.csv or expression folders
    records = read_source("folder:/data/mine")      # AFS/ANS/.../SUS or happy/sad/... folders
    records = read_source("manifest:/data/x.csv")   # columns path, expression[, subject]

    log = ReadLog("kdef:/data/KDEF_and_AKDEF")      # what was left out and why, how subjects were named
    records = read_source(log.spec, log=log)
"""
from __future__ import annotations

from ..errors import DatasetError
from .cfee import read_cfee
from .readers import ReadLog, Record, read_expression_folders, read_kdef, read_manifest, read_rafd

KINDS = ("kdef", "rafd", "cfee", "folder", "manifest", "synthetic")


def read_source(spec: str, kdef_angles=("S",), rafd_angles=("090",), rafd_gazes=("frontal",),
                skip_bad=False, log: ReadLog | None = None) -> list[Record]:
    """Records of one 'kind:path' source; `log` collects what was left out and how subjects were read."""
    kind, sep, path = spec.partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in KINDS or kind == "synthetic":
        raise DatasetError(f"data source '{spec}' is not kind:path; kinds: {', '.join(KINDS[:-1])} (or 'synthetic')")
    log = log or ReadLog(spec)
    readers = {
        "kdef": lambda: read_kdef(path, kdef_angles, skip_bad, log),
        "rafd": lambda: read_rafd(path, rafd_angles, rafd_gazes, skip_bad, log),
        "cfee": lambda: read_cfee(path, skip_bad, log),
        "folder": lambda: read_expression_folders(path, "folder", skip_bad, log),
        "manifest": lambda: read_manifest(path, "manifest", skip_bad, log),
    }
    log.records = readers[kind]()
    return log.records
