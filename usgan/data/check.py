"""Check the data before any GPU hour: what each source yields, what was left out and why, the split, and a
contact sheet to look at. Reads, decodes and caches exactly as training does, so training then reuses the cache.

    usgan-data check --data kdef:/data/KDEF_and_AKDEF --data rafd:/data/RaFD --data cfee:/data/CFEE_Database_230
    usgan-data check --preset paper --json --out check/        # one JSON object; the sheet in check/
    python -m usgan.data check --data folder:/data/mine         # the same, without the console script

Exit status: 0 when every source yields images, 1 when one does not, 2 when the input cannot be read at all.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..cli_common import add_config_flags

SHEET = "contact_sheet.png"


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="usgan-data check", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_flags(ap, "the run's preset: its data settings and image size (default demo)", "the run's YAML config")
    ap.add_argument("--skip-bad", action="store_true",
                    help="leave out unreadable or misnamed images, as training would")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    ap.add_argument("--out", default="data-check", help=f"folder for {SHEET} (default ./data-check)")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    return ap


def run_check(cfg, skip_bad: bool = False, out=None, progress: bool = True) -> dict:
    """The data report of cfg's sources, with the contact sheet written to `out` (none when out is None)."""
    from . import face_data, read_sources
    from .align import CropGeometry
    from .contact_sheet import contact_sheet
    from .report import data_report

    logs = read_sources(cfg.data, skip_bad, progress, keep_going=True)
    data = None
    if any(log.records for log in logs):
        data = face_data(logs, cfg.data, cfg.model.image_size, skip_bad=skip_bad, progress=progress)
    report = data_report(logs, data)
    report["settings"] = {"image_size": cfg.model.image_size, "test_fraction": cfg.data.test_fraction,
                          "split_seed": cfg.data.split_seed, "align_faces": cfg.data.align_faces,
                          "cache_dir": cfg.data.cache_dir}
    report["contact_sheet"] = None
    if out is not None and data is not None:
        # The aligned row previews data.align_faces, so it uses the eye geometry that setting would.
        report["contact_sheet"] = contact_sheet(data, Path(out) / SHEET, cfg.data.align_faces,
                                                CropGeometry(*cfg.data.align_eyes))
    return report


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["check"]:       # `usgan-data check ...` and `python -m usgan.data.check ...` alike
        argv = argv[1:]
    a = build_parser().parse_args(argv)
    from ..config import config_from_cli, validate
    from ..errors import ConfigError

    try:
        cfg = validate(config_from_cli(a))
        report = run_check(cfg, a.skip_bad, a.out, progress=not (a.quiet or a.json))
    except (ConfigError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if a.json:
        print(json.dumps(report, indent=1))
    else:
        from .report import report_lines
        print("\n".join(report_lines(report)))
        if report["contact_sheet"]:
            sheet = report["contact_sheet"]
            print(f"contact sheet: {sheet['path']} (face aligner: {sheet['aligner']})")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
