"""The report for reading: plain text, Markdown, JSON, and the files written by --out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.chart import plot_preferences
from analysis.report import Report


TABLES = ("preferences", "tests", "contrasts", "positions", "groups", "items", "participants")


def _sections(report: Report) -> list[tuple[str, pd.DataFrame, tuple[str, ...]]]:
    """The report's tables for reading, in order: (title, table, leading columns whose repeats read as groups)."""
    m = report.meta
    pct = _pct_formatter(m)
    level = _level(m)

    def shares(frame: pd.DataFrame, *lead: str) -> pd.DataFrame:
        cols = {c.capitalize(): frame[c] for c in lead}
        boot = [_interval(a, b, pct) for a, b in zip(frame["ci_low"], frame["ci_high"])]
        cols.update({"Votes": frame["votes"], "%": frame["percent"].map(pct), f"{level} CI (bootstrap)": boot})
        if "wilson_low" in frame:
            cols[f"{level} CI (Wilson)"] = [_interval(a, b, pct) for a, b in zip(frame["wilson_low"],
                                                                                frame["wilson_high"])]
        return pd.DataFrame(cols)

    out = [("Choices per question and method", shares(report.preferences, "question", "method"), ("Question",)),
           ("Tests per question", _tests_frame(report.tests, m), ())]
    if not report.contrasts.empty:
        c = report.contrasts
        out.append((f"Pre-specified contrasts: {m['contrast']} against each other method (Holm across all "
                    f"{len(c)})", pd.DataFrame({
                        "Question": c["question"], "Versus": c["versus"],
                        "Votes": [f"{a}:{b}" for a, b in zip(c["votes"], c["versus_votes"])],
                        "diff pp [CI]": [f"{pct(d)} {_interval(lo, hi, pct)}" for d, lo, hi in
                                         zip(c["diff"], c["diff_low"], c["diff_high"])],
                        "p boot": c["p_boot"].map(_p), "p boot Holm": c["p_boot_holm"].map(_p)}), ("Question",)))
    if not report.positions.empty:
        pos = report.positions
        shown = {"Question": pos["question"], "Votes": pos["votes"]}
        shown.update({f"Image {c[3:-4]} %": pos[c].map(pct) for c in pos.columns if c.endswith("_pct")})
        shown.update({"chi2 (df)": [f"{a:.1f} ({d})" for a, d in zip(pos["chi2"], pos["chi2_df"])],
                      "p": pos["p"].map(_p)})
        out.append(("Screen positions chosen (position-bias check; methods rotate through positions)",
                    pd.DataFrame(shown), ()))
    if not report.groups.empty:
        out.append(("By item group", shares(report.groups, "item_group", "question", "method")
                    .rename(columns={"Item_group": "Group"}), ("Group", "Question")))
    out.append((f"Per item: % of votes in method order ({' / '.join(m['methods'])})", _items_wide(report.items, m),
                ()))
    return out


def format_text(report: Report) -> str:
    """The plain terminal report."""
    lines = _header(report.meta)
    for title, table, lead in _sections(report):
        lines += ["", title, _blank_repeats(table, *lead).to_string(index=False)]
    if report.meta["notes"]:
        lines += ["", "Notes"] + [f"- {note}" for note in report.meta["notes"]]
    return "\n".join(lines)


def format_markdown(report: Report) -> str:
    """The report as Markdown (for a README, an issue or a paper draft)."""
    out = ["# User study: choices per method", ""] + [f"- {line}" for line in _header(report.meta)[1:]]
    for title, table, _ in _sections(report):
        out += ["", f"## {title}", "", _markdown_table(table)]
    if report.meta["notes"]:
        out += ["", "## Notes", ""] + [f"- {note}" for note in report.meta["notes"]]
    return "\n".join(out) + "\n"


def report_to_json(report: Report) -> str:
    """The whole report as one JSON document (NaN written as null)."""
    doc = {"meta": report.meta}
    for name in TABLES:
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
    for name in TABLES:
        frame = getattr(report, name)
        if not frame.empty:
            frame.to_csv(out / f"{name}.csv", index=False)
            written.append(out / f"{name}.csv")
    note = f"Error bars: {_level(report.meta)} CI, two-way cluster bootstrap (participants and items)"
    written += plot_preferences(report.preferences, out / "preferences", note=note)
    return written


def _header(m: dict) -> list[str]:
    """The lines that say what was analysed and how."""
    study = f" (study {m['study_id']})" if m.get("study_id") else ""
    platform = "".join(f", {n} {reason}" for reason, n in m["excluded_platform"].items())
    excluded = (f"{m['participants_excluded']} excluded: {m['excluded_failed_catch']} by catch trials, "
                f"{m['excluded_incomplete']} incomplete, {m['excluded_speeders']} speeders, "
                f"{m['excluded_unfinished']} unfinished{platform}; rule: {m['exclusion_rule']}")
    prolific = []
    if m["prolific"]:
        p = m["prolific"]
        shares = ", ".join(f"{n} {status}" for status, n in p["submissions"].items())
        prolific = [f"Prolific export: {sum(p['submissions'].values())} submissions ({shares}); votes kept from "
                    f"{' and '.join(p['kept'])} only; submissions that never reached the study: {p['never_enrolled']}"]
    return [
        "User study: choices per method and question",
        f"source: {m['source']}{study}",
        f"participants: {m['participants_analysed']} analysed of {m['participants_total']} ({excluded})",
        *prolific,
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
