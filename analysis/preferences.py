"""The study's preference report: votes in; the paper's Figure 9 numbers, tests and chart out.

Run from the repository root:
    python analysis/preferences.py                            # the study app's database (var/study.sqlite)
    python analysis/preferences.py --db other.sqlite --study s1 --format markdown
    python analysis/preferences.py --csv votes.csv --methods StarGAN,STGAN,GANimation,US-GAN
    python analysis/preferences.py --out reports/s1           # also writes report files, CSV tables, PNG + SVG
    python analysis/preferences.py --help

From code (the study app's admin page, tests, benchmarks):
    from analysis.preferences import preference_table, plot_preferences, build_report
    table = preference_table(votes_df)            # long votes in (catch rows included), one row per question x method
    plot_preferences(table, "out/preferences")    # out/preferences.png and out/preferences.svg
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.stats import (BOOTSTRAP_METHOD, WILSON_METHOD, cluster_bootstrap, item_shares, preference_shares,
                            question_tests)
from analysis.votes import (VoteDataError, apply_exclusions, declared_methods_for, default_db_path, methods_in,
                            questions_in, read_csv, read_db, select_study, validate)

FORMATS = ("text", "json", "csv", "markdown")


@dataclass
class Report:
    """Every table of the report, plus the facts needed to read it (meta)."""

    preferences: pd.DataFrame
    tests: pd.DataFrame
    groups: pd.DataFrame
    items: pd.DataFrame
    participants: pd.DataFrame
    meta: dict = field(default_factory=dict)


def build_report(
    votes_df: pd.DataFrame,
    methods: list[str] | None = None,
    *,
    max_failed_catch: int | None = 2,
    min_trials: int | None = None,
    n_boot: int = 10_000,
    seed: int | None = 0,
    confidence: float = 0.95,
    source: str = "the vote table",
) -> Report:
    """Validate, exclude, and compute the preference table, the tests, and the item and group breakdowns."""
    votes = validate(votes_df, source)
    kept, participants, repeats = apply_exclusions(votes, max_failed_catch, min_trials)
    excluded = participants[participants["excluded"]]
    if kept.empty:
        if participants["trials"].sum() == 0:
            raise VoteDataError(f"no votes yet in {source} (only catch trials); run a study first")
        raise VoteDataError(f"no votes left in {source} after exclusions: all {len(participants)} participants "
                            f"excluded ({excluded['reason'].value_counts().to_dict()})")
    methods = methods_in(kept, methods)
    questions = questions_in(kept)
    boot = cluster_bootstrap(kept, methods, questions, n_boot=n_boot, seed=seed)
    preferences = preference_shares(kept, methods, questions, boot, confidence)
    tests = question_tests(kept, methods, questions, boot, confidence)
    groups = _group_breakdown(kept, methods, n_boot, seed, confidence)
    items = item_shares(kept, methods, questions, confidence)
    studies = sorted(votes["study_id"].dropna().unique())
    meta = {
        "source": source,
        "study_id": studies[0] if len(studies) == 1 else None,
        "methods": methods,
        "questions": questions,
        "participants_total": int(len(participants)),
        "participants_excluded": int(len(excluded)),
        "participants_analysed": int(kept["participant_id"].nunique()),
        "excluded_failed_catch": int(excluded["reason"].str.contains("catch").sum()),
        "excluded_incomplete": int(excluded["reason"].str.contains("fewer").sum()),
        "exclusion_rule": _exclusion_rule(max_failed_catch, min_trials),
        "catch_trials": int(participants["catch_trials"].sum()),
        "catch_trials_failed": int(participants["failed_catch"].sum()),
        "items": int(kept["item_id"].nunique()),
        "votes": int(len(kept)),
        "repeated_votes_dropped": int(repeats),
        "confidence": confidence,
        "interval": BOOTSTRAP_METHOD,
        "interval_alongside": WILSON_METHOD,
        "n_boot": int(n_boot),
        "seed": seed,
    }
    meta["notes"] = _notes(preferences, tests, meta)
    return Report(preferences, tests, groups, items, participants, meta)


def preference_table(
    votes_df: pd.DataFrame,
    methods: list[str] | None = None,
    *,
    max_failed_catch: int | None = 2,
    min_trials: int | None = None,
    n_boot: int = 10_000,
    seed: int | None = 0,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Votes, percent, bootstrap and Wilson 95 % CIs per question and method (exclusions applied)."""
    votes = validate(votes_df)
    kept, _, _ = apply_exclusions(votes, max_failed_catch, min_trials)
    if kept.empty:
        raise VoteDataError("no votes left after exclusions; run a study first")
    methods, questions = methods_in(kept, methods), questions_in(kept)
    boot = cluster_bootstrap(kept, methods, questions, n_boot=n_boot, seed=seed)
    return preference_shares(kept, methods, questions, boot, confidence)


def plot_preferences(table_df: pd.DataFrame, path: str | Path, title: str | None = None,
                     note: str | None = "Error bars: 95 % CI, bootstrap over participants and items") -> list[Path]:
    """Grouped bars per question (one per method) with bootstrap error bars; writes PNG and SVG."""
    from matplotlib.figure import Figure   # no pyplot: no global state, safe inside a web server's threads

    path = Path(path)
    if path.suffix.lower() in (".png", ".svg", ".pdf"):
        path = path.with_suffix("")
    questions = list(dict.fromkeys(table_df["question"]))
    methods = list(dict.fromkeys(table_df["method"]))
    pivot = table_df.set_index(["question", "method"])
    width = 0.8 / max(1, len(methods))
    fig = Figure(figsize=(1.6 + 1.9 * len(questions), 4.2), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(len(questions))
    for k, method in enumerate(methods):
        rows = pivot.reindex([(q, method) for q in questions])
        pct = rows["percent"].to_numpy(float)
        low = rows["ci_low"].to_numpy(float) if "ci_low" in rows else np.full(len(questions), np.nan)
        high = rows["ci_high"].to_numpy(float) if "ci_high" in rows else np.full(len(questions), np.nan)
        err = np.vstack([np.clip(pct - low, 0, None), np.clip(high - pct, 0, None)])
        err = np.where(np.isfinite(err), err, 0.0)
        pos = x - 0.4 + width * (k + 0.5)
        bars = ax.bar(pos, np.nan_to_num(pct), width * 0.92, yerr=err, capsize=3, label=method,
                      color=f"C{k}", error_kw={"elinewidth": 1, "ecolor": "0.2"})
        ax.bar_label(bars, labels=[f"{p:.0f}" if np.isfinite(p) else "" for p in pct], padding=2, fontsize=7)
    ax.set_xticks(x, [q.capitalize() for q in questions])
    ax.set_ylabel("Choices (%)")
    top = np.nanmax(np.r_[table_df.get("ci_high", pd.Series(dtype=float)).to_numpy(float),
                          table_df["percent"].to_numpy(float), 10.0])
    ax.set_ylim(0, min(100, math.ceil((top + 8) / 10) * 10))
    ax.yaxis.grid(True, color="0.9")
    ax.set_axisbelow(True)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(frameon=False, ncols=min(len(methods), 4), loc="upper left", fontsize=8)
    if title:
        ax.set_title(title)
    if note:
        ax.set_xlabel(note, loc="right", fontsize=7, color="0.35")   # an axis label, so the layout makes room
    path.parent.mkdir(parents=True, exist_ok=True)
    written = [path.with_suffix(".png"), path.with_suffix(".svg")]
    fig.savefig(written[0], dpi=200)
    fig.savefig(written[1])
    return written


# ---------------------------------------------------------------- report text


def format_text(report: Report) -> str:
    """The plain terminal report."""
    m = report.meta
    pct = _pct_formatter(m)
    lines = _header(m) + ["", "Choices per question and method"]
    prefs = report.preferences
    table = pd.DataFrame({
        "question": prefs["question"], "method": prefs["method"], "votes": prefs["votes"],
        "%": prefs["percent"].map(pct),
        f"{_level(m)} CI (bootstrap)": [_interval(a, b, pct) for a, b in zip(prefs["ci_low"], prefs["ci_high"])],
        f"{_level(m)} CI (Wilson)": [_interval(a, b, pct) for a, b in zip(prefs["wilson_low"], prefs["wilson_high"])],
    })
    lines += [_blank_repeats(table, "question").to_string(index=False), "", "Tests per question"]
    lines += [_tests_frame(report.tests, m).to_string(index=False)]
    if not report.groups.empty:
        g = report.groups
        groups = pd.DataFrame({
            "group": g["item_group"], "question": g["question"], "method": g["method"], "votes": g["votes"],
            "%": g["percent"].map(pct),
            f"{_level(m)} CI (bootstrap)": [_interval(a, b, pct) for a, b in zip(g["ci_low"], g["ci_high"])],
            "items": g["items"],
        })
        lines += ["", "By item group", _blank_repeats(groups, "group", "question").to_string(index=False)]
    lines += ["", f"Per item: % of votes in method order ({' / '.join(m['methods'])})",
              _items_wide(report.items, m).to_string(index=False)]
    if m["notes"]:
        lines += ["", "Notes"] + [f"- {note}" for note in m["notes"]]
    return "\n".join(lines)


def format_markdown(report: Report) -> str:
    """The report as Markdown (for a README, an issue or a paper draft)."""
    m = report.meta
    pct = _pct_formatter(m)
    prefs = report.preferences
    table = pd.DataFrame({
        "Question": prefs["question"], "Method": prefs["method"], "Votes": prefs["votes"],
        "%": prefs["percent"].map(pct),
        f"{_level(m)} CI (bootstrap)": [_interval(a, b, pct) for a, b in zip(prefs["ci_low"], prefs["ci_high"])],
        f"{_level(m)} CI (Wilson)": [_interval(a, b, pct) for a, b in zip(prefs["wilson_low"], prefs["wilson_high"])],
    })
    out = ["# User study: choices per method", ""] + [f"- {line}" for line in _header(m)[1:]]
    out += ["", "## Choices per question and method", "", _markdown_table(table)]
    out += ["", "## Tests per question", "", _markdown_table(_tests_frame(report.tests, m))]
    if not report.groups.empty:
        g = report.groups
        groups = pd.DataFrame({
            "Group": g["item_group"], "Question": g["question"], "Method": g["method"], "Votes": g["votes"],
            "%": g["percent"].map(pct),
            f"{_level(m)} CI (bootstrap)": [_interval(a, b, pct) for a, b in zip(g["ci_low"], g["ci_high"])],
        })
        out += ["", "## By item group", "", _markdown_table(groups)]
    out += ["", f"## Per item (% of votes: {' / '.join(m['methods'])})", "", _markdown_table(_items_wide(report.items, m))]
    if m["notes"]:
        out += ["", "## Notes", ""] + [f"- {note}" for note in m["notes"]]
    return "\n".join(out) + "\n"


def report_to_json(report: Report) -> str:
    """The whole report as one JSON document (NaN written as null)."""
    doc = {"meta": report.meta}
    for name in ("preferences", "tests", "groups", "items", "participants"):
        frame = getattr(report, name)
        doc[name] = [{k: _json_value(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]
    return json.dumps(doc, indent=2, default=_json_value)


def write_report(report: Report, out_dir: str | Path) -> list[Path]:
    """Write report.txt/.md/.json, every table as CSV, and the chart as PNG and SVG into out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in (("report.txt", format_text(report)), ("report.md", format_markdown(report)),
                       ("report.json", report_to_json(report))):
        (out / name).write_text(text + ("" if text.endswith("\n") else "\n"), encoding="utf-8")
        written.append(out / name)
    for name in ("preferences", "tests", "groups", "items", "participants"):
        frame = getattr(report, name)
        if not frame.empty:
            frame.to_csv(out / f"{name}.csv", index=False)
            written.append(out / f"{name}.csv")
    note = f"Error bars: {_level(report.meta)} CI, two-way cluster bootstrap (participants and items)"
    written += plot_preferences(report.preferences, out / "preferences", note=note)
    return written


# ---------------------------------------------------------------- command


def main(argv: list[str] | None = None) -> int:
    """The command: load, report, print; user-fixable problems print one line and return 1."""
    args = _parser().parse_args(argv)
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
    return build_report(votes, methods, max_failed_catch=args.max_failed_catch or None, min_trials=args.min_trials,
                        n_boot=args.n_boot, seed=args.seed, confidence=args.confidence, source=source)


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
    p.add_argument("--max-failed-catch", type=_nonnegative_int, default=2, metavar="K",
                   help="exclude participants failing K or more catch trials (default 2, Prolific's rule; 0 = off)")
    p.add_argument("--min-trials", type=_nonnegative_int, default=None, metavar="N",
                   help="exclude participants who answered fewer than N (non-catch) items")
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


# ---------------------------------------------------------------- helpers


def _group_breakdown(kept: pd.DataFrame, methods: list[str], n_boot: int, seed: int | None,
                     confidence: float) -> pd.DataFrame:
    """The preference table within each item group (e.g. in / out of dataset), when items carry a group."""
    if kept["item_group"].isna().all():
        return pd.DataFrame()
    tagged = kept.assign(item_group=kept["item_group"].fillna("untagged"))
    frames = []
    for k, (group, sub) in enumerate(sorted(tagged.groupby("item_group"), key=lambda kv: str(kv[0]))):
        questions = questions_in(sub)
        # A different stream per group, still fixed by the seed.
        group_seed = None if seed is None else [seed, k + 1]
        boot = cluster_bootstrap(sub, methods, questions, n_boot=n_boot, seed=group_seed)
        frames.append(preference_shares(sub, methods, questions, boot, confidence).assign(item_group=group))
    out = pd.concat(frames, ignore_index=True)
    return out[["item_group"] + [c for c in out.columns if c != "item_group"]]


def _exclusion_rule(max_failed_catch: int | None, min_trials: int | None) -> str:
    """The exclusion rule in words."""
    parts = [f"failed >= {max_failed_catch} catch trials" if max_failed_catch else "catch trials not used"]
    if min_trials:
        parts.append(f"fewer than {min_trials} items answered")
    return "; ".join(parts)


def _notes(preferences: pd.DataFrame, tests: pd.DataFrame, meta: dict) -> list[str]:
    """What a reader must know to read the numbers right."""
    notes = []
    degenerate = preferences[(preferences["votes"] == 0) | (preferences["votes"] == preferences["n_votes"])]
    for _, row in degenerate.iterrows():
        what = "no votes" if row["votes"] == 0 else "every vote"
        notes.append(f"{row['method']} got {what} for {row['question']}: its bootstrap interval collapses to a "
                     f"point; read the Wilson interval instead")
    for _, row in tests[tests["tie"]].iterrows():
        notes.append(f"tie for the most votes in {row['question']}: {row['tied_best']} ({int(row['best_votes'])} each)")
    if meta["participants_analysed"] < 2:
        notes.append("a single participant: the bootstrap resamples items only, and agreement (kappa) needs two")
    notes.append("'p uniform' and 'p binomial' treat votes as independent, which votes clustered by participant and "
                 "item are not; 'p Rao-Scott' divides the chi-square by the design effect the cluster bootstrap "
                 "measures, and 'p boot' tests best vs second on the same bootstrap: read these two")
    notes.append("the two-way bootstrap is mildly conservative (it counts vote-level noise twice; Owen 2007); "
                 "with strongly clustered votes its coverage is close to nominal")
    if meta["repeated_votes_dropped"]:
        notes.append(f"{meta['repeated_votes_dropped']} repeated votes (same participant, item, question) dropped; "
                     f"the last answer kept")
    return notes


def _header(m: dict) -> list[str]:
    """The lines that say what was analysed and how."""
    study = f" (study {m['study_id']})" if m.get("study_id") else ""
    excluded = (f"{m['participants_excluded']} excluded: {m['excluded_failed_catch']} by catch trials, "
                f"{m['excluded_incomplete']} incomplete; rule: {m['exclusion_rule']}")
    return [
        "User study: choices per method and question",
        f"source: {m['source']}{study}",
        f"participants: {m['participants_analysed']} analysed of {m['participants_total']} ({excluded})",
        f"catch trials: {m['catch_trials_failed']} of {m['catch_trials']} failed",
        f"items: {m['items']}; votes analysed: {m['votes']}; methods: {', '.join(m['methods'])}",
        f"{_level(m)} CI: {m['interval']}; {m['n_boot']} resamples, seed {m['seed']}",
        f"beside it: {m['interval_alongside']}",
    ]


def _tests_frame(tests: pd.DataFrame, m: dict) -> pd.DataFrame:
    """The tests table, formatted for reading."""
    pct = _pct_formatter(m)
    return pd.DataFrame({
        "question": tests["question"],
        "chi2 (df)": [f"{c:.1f} ({d})" if np.isfinite(c) else "-" for c, d in zip(tests["chi2"], tests["chi2_df"])],
        "p uniform": tests["chi2_p"].map(_p),
        "p Rao-Scott": tests["chi2_p_rao_scott"].map(_p),
        "best vs second": [f"{b} = {s} (tie)" if t else (f"{b} > {s}" if b else "-")
                           for b, s, t in zip(tests["best"], tests["second"], tests["tie"])],
        "votes": [f"{_int(b)}:{_int(s)}" for b, s in zip(tests["best_votes"], tests["second_votes"])],
        "p binomial": tests["binom_p"].map(_p),
        "p binom Holm": tests["binom_p_holm"].map(_p),
        "diff pp [CI]": [f"{pct(d)} {_interval(lo, hi, pct)}" if np.isfinite(d) else "-"
                         for d, lo, hi in zip(tests["diff"], tests["diff_low"], tests["diff_high"])],
        "p boot Holm": tests["diff_p_boot_holm"].map(_p),
        "Fleiss kappa": tests["fleiss_kappa"].map(lambda k: f"{k:.3f}" if np.isfinite(k) else "n/a"),
    })


def _items_wide(items: pd.DataFrame, m: dict) -> pd.DataFrame:
    """One row per item; per question the percentages in method order."""
    cell = (items.assign(pct=items["percent"].map(lambda v: f"{v:.0f}" if np.isfinite(v) else "-"))
            .groupby(["item_id", "question"], sort=False)["pct"].agg(" / ".join).unstack("question"))
    cell = cell.reindex(columns=[q for q in m["questions"] if q in cell.columns]).fillna("-")
    meta = items.groupby("item_id")[["item_group"]].first()
    wide = meta.join(cell).reset_index().rename(columns={"item_id": "item", "item_group": "group"})
    if wide["group"].isna().all():
        wide = wide.drop(columns="group")
    return wide.fillna("-")


def _blank_repeats(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """Blank out repeated leading labels, so a long table reads as groups."""
    labels = frame[list(columns)].astype(str)
    frame = frame.copy()
    for k, col in enumerate(columns):
        prefix = labels[list(columns[:k + 1])].agg("|".join, axis=1)
        frame[col] = frame[col].astype(object).where(prefix.ne(prefix.shift()), "")
    return frame


def _markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (no tabulate dependency)."""
    cells = [[str(c) for c in frame.columns]] + [[str(v).replace("|", "\\|") for v in row]
                                                 for row in frame.itertuples(index=False)]
    return "\n".join(["| " + " | ".join(cells[0]) + " |", "|" + "---|" * len(frame.columns)]
                     + ["| " + " | ".join(r) + " |" for r in cells[1:]])


def _pct_formatter(m: dict):
    """Percent with one decimal."""
    return lambda v: f"{v:.1f}" if v is not None and np.isfinite(v) else "-"


def _interval(low: float, high: float, fmt) -> str:
    """[low, high] or '-' when the interval does not exist."""
    return f"[{fmt(low)}, {fmt(high)}]" if np.isfinite(low) and np.isfinite(high) else "-"


def _level(m: dict) -> str:
    """The interval level, e.g. '95%'."""
    return f"{100 * m['confidence']:g}%"


def _p(value: float) -> str:
    """A p-value for reading."""
    if value is None or not np.isfinite(value):
        return "-"
    return "<1e-4" if value < 1e-4 else f"{value:.4f}"


def _int(value) -> str:
    """An integer count, '-' if absent."""
    return str(int(value)) if value is not None and np.isfinite(value) else "-"


def _json_value(value):
    """JSON-safe scalars: NaN becomes null, numpy types become Python types."""
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if value is pd.NA or value is pd.NaT:
        return None
    return value


if __name__ == "__main__":
    sys.exit(main())
