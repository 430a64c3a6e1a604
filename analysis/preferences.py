"""The study's preference report: votes in; the paper's Figure 9 numbers, tests and chart out.

Run from the repository root:
    python analysis/preferences.py                            # the study app's database (var/study.sqlite)
    python analysis/preferences.py --db other.sqlite --study s1 --format markdown
    python analysis/preferences.py --csv votes.csv --methods StarGAN,STGAN,GANimation,US-GAN
    python analysis/preferences.py --out reports/s1           # also writes report files, CSV tables, PNG + SVG
    python analysis/preferences.py --contrast US-GAN --min-median-ms 1500   # pre-specified contrasts, speeders
    python analysis/preferences.py --db results.sqlite --study s1 --prolific-export prolific.csv   # APPROVED only
    python analysis/preferences.py --csv votes.csv --participants participants.csv --prolific-export prolific.csv
    python analysis/preferences.py --help

From code (the study app's admin page, tests, benchmarks):
    from analysis.preferences import preference_table, plot_preferences, build_report
    table = preference_table(votes_df)            # long votes in (catch rows included), one row per question x method
    plot_preferences(table, "out/preferences")    # out/preferences.png and out/preferences.svg
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __name__ == "__main__":   # before the imports that need the extra: a missing one is one line, not a traceback
    from analysis.installed import exit_if_missing

    exit_if_missing()

from analysis.chart import plot_preferences
from analysis.prolific import (APPROVED, AWAITING_REVIEW, participant_ids, read_export, read_participants_csv,
                               submission_statuses)
from analysis.report import Report, build_report, preference_table
from analysis.report_text import format_markdown, format_text, report_to_json, write_report
from analysis.votes import (VoteDataError, declared_methods_for, default_db_path, read_csv, read_db,
                            read_db_participants, select_study, validate)

__all__ = ["Report", "build_report", "format_markdown", "format_text", "main", "plot_preferences",
           "preference_table", "report_to_json", "write_report"]
FORMATS = ("text", "json", "csv", "markdown")


def main(argv: list[str] | None = None) -> int:
    """The command: load, report, print; user-fixable problems print one line and return 1."""
    parser = _parser()
    args = parser.parse_args(argv)
    if (args.include_awaiting_review or args.participants) and not args.prolific_export:
        parser.error("--include-awaiting-review and --participants go with --prolific-export")
    try:
        report = _run(args)
    except VoteDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.format == "text":
        print(format_text(report))
    elif args.format == "markdown":
        print(format_markdown(report), end="")
    elif args.format == "json":
        print(report_to_json(report))
    else:
        print(report.preferences.to_csv(index=False), end="")
    if args.out:
        written = write_report(report, args.out)
        # stderr, so that --format json|csv on stdout stays machine-readable
        print(f"wrote {len(written)} files to {args.out}: {', '.join(p.name for p in written)}", file=sys.stderr)
    return 0


def _run(args: argparse.Namespace) -> Report:
    """Load the votes named by the arguments and build the report."""
    declared: list[tuple[str | None, str]] = []
    db = None
    if args.csv:
        raw, source = read_csv(args.csv), str(args.csv)
    else:
        db = Path(args.db) if args.db else default_db_path()
        raw, declared = read_db(db)
        source = str(db)
    votes = validate(raw, source)
    votes = select_study(votes, args.study, source)
    study = args.study or next(iter(votes["study_id"].dropna().unique()), None)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
    methods = methods or declared_methods_for(declared, study) or None
    keep = (APPROVED, AWAITING_REVIEW) if args.include_awaiting_review else (APPROVED,)
    platform, prolific = None, None
    if args.prolific_export:
        if args.participants:
            people = read_participants_csv(args.participants)
        elif db is not None:
            people = participant_ids(read_db_participants(db))
        else:
            raise VoteDataError("--prolific-export with --csv needs --participants participants.csv (from "
                                "`python -m study_app.reports --participants`): it links the votes to Prolific ids")
        platform, prolific = submission_statuses(read_export(args.prolific_export), people, study)
        prolific["export"] = str(args.prolific_export)
    return build_report(votes, methods, max_failed_catch=args.max_failed_catch, min_trials=args.min_trials,
                        min_median_ms=args.min_median_ms, contrast=args.contrast, n_boot=args.n_boot,
                        seed=args.seed, confidence=args.confidence, source=source,
                        keep_unfinished=args.keep_unfinished, platform=platform, keep_statuses=keep,
                        prolific=prolific)


def _parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(
        prog="python analysis/preferences.py",
        description="Percentage of choices per method and question from the user study's votes, with cluster "
                    "bootstrap and Wilson intervals, tests, agreement, item breakdowns and the Figure 9 chart.")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--db", help="study SQLite database with the votes_long view "
                                  "(default: $USGAN_STUDY_DB, else var/study.sqlite)")
    src.add_argument("--csv", help="CSV in the long vote format (at least participant_id,item_id,question,method)")
    p.add_argument("--study", help="analyse this study_id (needed when the source holds several)")
    p.add_argument("--methods", help="comma-separated method list, so a method nobody chose shows 0 %% "
                                     "(default: the database's list, else the methods voted for)")
    p.add_argument("--max-failed-catch", type=_nonnegative_int, default=None, metavar="K",
                   help="override the study's exclusion rule: exclude participants failing K or more catch trials "
                        "(0 = off; default: the rule stored with the study, else 2, Prolific's rule)")
    p.add_argument("--min-trials", type=_nonnegative_int, default=None, metavar="N",
                   help="exclude participants who answered fewer than N (non-catch) items")
    p.add_argument("--min-median-ms", type=_positive_int, default=None, metavar="MS",
                   help="speeder rule: exclude participants whose median response time is under MS milliseconds")
    p.add_argument("--keep-unfinished", action="store_true",
                   help="also analyse participants who did not finish (dropped by default)")
    p.add_argument("--prolific-export", metavar="CSV",
                   help="Prolific's submissions export: keep only APPROVED submissions (and drop participants "
                        "with no submission at all); the report counts each status")
    p.add_argument("--include-awaiting-review", action="store_true",
                   help="with --prolific-export, also keep submissions AWAITING REVIEW (before you have approved)")
    p.add_argument("--participants", metavar="CSV",
                   help="participants.csv of `python -m study_app.reports`, linking participant_id to the Prolific "
                        "id (needed with --csv; --db reads it from the database)")
    p.add_argument("--contrast", metavar="METHOD",
                   help="pre-specified contrasts: METHOD against each other method per question, Holm across all")
    p.add_argument("--n-boot", type=_positive_int, default=10_000, help="bootstrap resamples (default 10000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--confidence", type=_confidence, default=0.95, help="interval level (default 0.95)")
    p.add_argument("--format", choices=FORMATS, default="text", help="stdout format (csv: the preference table)")
    p.add_argument("--out", metavar="DIR", help="also write report.{txt,md,json}, CSV tables and preferences.png/.svg")
    return p


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _nonnegative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _confidence(text: str) -> float:
    """argparse type: a level strictly between 0 and 1."""
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1, e.g. 0.95")
    return value


if __name__ == "__main__":
    sys.exit(main())
