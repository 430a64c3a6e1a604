"""The preference report as tables: validate, exclude, estimate, test; no printing (see report_text.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from analysis.checks import contrasts, position_bias
from analysis.stats import (BOOTSTRAP_METHOD, WILSON_METHOD, cluster_bootstrap, item_shares, preference_shares,
                            question_tests)
from analysis.votes import (NO_SUBMISSION, VoteDataError, apply_exclusions, exclusion_rule, methods_in, questions_in,
                            validate)


@dataclass
class Report:
    """Every table of the report, plus the facts needed to read it (meta)."""

    preferences: pd.DataFrame
    tests: pd.DataFrame
    groups: pd.DataFrame
    items: pd.DataFrame
    participants: pd.DataFrame
    meta: dict = field(default_factory=dict)
    contrasts: pd.DataFrame = field(default_factory=pd.DataFrame)  # empty unless a focus method was named
    positions: pd.DataFrame = field(default_factory=pd.DataFrame)


def build_report(
    votes_df: pd.DataFrame,
    methods: list[str] | None = None,
    *,
    max_failed_catch: int | None = None,
    min_trials: int | None = None,
    min_median_ms: float | None = None,
    contrast: str | None = None,
    n_boot: int = 10_000,
    seed: int | None = 0,
    confidence: float = 0.95,
    source: str = "the vote table",
    keep_unfinished: bool = False,
    platform: pd.Series | None = None,
    keep_statuses: tuple[str, ...] = ("APPROVED",),
    prolific: dict | None = None,
) -> Report:
    """Validate, exclude (max_failed_catch None: the study's rule; 0: none), estimate, test, check, break down.

    Unfinished participants are dropped unless keep_unfinished; with `platform` (Prolific's status per
    participant_id, see analysis.prolific) only keep_statuses count; `prolific` is the export's summary."""
    votes, rule, kept, participants, repeats = _analysable(
        votes_df, source, max_failed_catch, min_trials, min_median_ms,
        dict(keep_unfinished=keep_unfinished, platform=platform, keep_statuses=keep_statuses))
    excluded = participants[participants["excluded"]]
    methods, questions, boot, preferences = _shares(kept, methods, n_boot, seed, confidence)
    tests = question_tests(kept, methods, questions, boot, confidence)
    groups = _group_breakdown(kept, methods, n_boot, seed, confidence)
    items = item_shares(kept, methods, questions, confidence)
    focus = contrasts(kept, methods, questions, boot, contrast, confidence) if contrast else pd.DataFrame()
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
        "excluded_speeders": int(excluded["reason"].str.contains("median").sum()),
        "excluded_unfinished": int(excluded["reason"].str.contains("unfinished").sum()),
        "excluded_platform": _platform_reasons(excluded["reason"]),
        "finished_known": bool(votes["finished"].notna().any()),
        "keep_unfinished": keep_unfinished,
        "prolific": None if prolific is None else {**prolific, "kept": list(keep_statuses)},
        "exclusion_rule": _exclusion_rule(rule, min_trials, min_median_ms),
        "contrast": contrast,
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
    return Report(preferences, tests, groups, items, participants, meta, contrasts=focus,
                  positions=position_bias(kept, questions))


def preference_table(
    votes_df: pd.DataFrame,
    methods: list[str] | None = None,
    *,
    max_failed_catch: int | None = None,
    min_trials: int | None = None,
    n_boot: int = 10_000,
    seed: int | None = 0,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Votes, percent, bootstrap and Wilson 95 % CIs per question and method (the study's exclusions applied,
    unfinished participants dropped)."""
    kept = _analysable(votes_df, "the vote table", max_failed_catch, min_trials, None, {})[2]
    return _shares(kept, methods, n_boot, seed, confidence)[3]


def _analysable(votes_df: pd.DataFrame, source: str, max_failed_catch: int | None, min_trials: int | None,
                min_median_ms: float | None, screening: dict):
    """(votes, rule, kept votes, participants, repeats dropped); refuses when no vote is left to analyse."""
    votes = validate(votes_df, source)
    rule = exclusion_rule(votes, max_failed_catch)
    kept, participants, repeats = apply_exclusions(votes, rule[0], min_trials, min_median_ms, **screening)
    if kept.empty:
        if participants["trials"].sum() == 0:
            raise VoteDataError(f"no votes yet in {source} (only catch trials); run a study first")
        reasons = participants.loc[participants["excluded"], "reason"].value_counts().to_dict()
        raise VoteDataError(f"no votes left in {source} after exclusions: all {len(participants)} participants "
                            f"excluded ({reasons})")
    return votes, rule, kept, participants, repeats


def _shares(kept: pd.DataFrame, methods: list[str] | None, n_boot: int, seed: int | None, confidence: float):
    """(methods, questions, bootstrap, preference table) of the kept votes."""
    methods, questions = methods_in(kept, methods), questions_in(kept)
    boot = cluster_bootstrap(kept, methods, questions, n_boot=n_boot, seed=seed)
    return methods, questions, boot, preference_shares(kept, methods, questions, boot, confidence)


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


def _platform_reasons(reasons: pd.Series) -> dict[str, int]:
    """Participants dropped per Prolific status (and for having no submission), from the exclusion reasons."""
    counts: dict[str, int] = {}
    for reason in (r for text in reasons for r in text.split("; ")):
        if reason.startswith("Prolific:") or reason == NO_SUBMISSION:
            counts[reason] = counts.get(reason, 0) + 1
    return dict(sorted(counts.items()))


def _exclusion_rule(rule: tuple[int, str], min_trials: int | None, min_median_ms: float | None) -> str:
    """The exclusion rule in words, with where the catch rule came from."""
    k, source = rule
    parts = [f"failed >= {k} catch trials ({source})" if k else f"catch trials not used ({source})"]
    if min_trials:
        parts.append(f"fewer than {min_trials} items answered")
    if min_median_ms:
        parts.append(f"median response under {min_median_ms:g} ms (speeders)")
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
    if not meta["finished_known"] and not meta["keep_unfinished"]:
        notes.append("the votes carry no 'finished' flag, so unfinished participants could not be dropped; "
                     "--min-trials N drops those who answered fewer than N items")
    if meta["repeated_votes_dropped"]:
        notes.append(f"{meta['repeated_votes_dropped']} repeated votes (same participant, item, question) dropped; "
                     f"the last answer kept")
    return notes
