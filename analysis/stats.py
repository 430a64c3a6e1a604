"""Estimates and tests for a forced-choice preference study: pure functions over the long vote table.

    from analysis.stats import cluster_bootstrap, preference_shares, question_tests
    boot = cluster_bootstrap(votes, methods, questions, n_boot=10_000, seed=0)
    table = preference_shares(votes, methods, questions, boot)
    tests = question_tests(votes, methods, questions, boot)

`votes` holds one row per kept (non-catch) vote with participant_id, item_id, question and method.
Votes cluster by participant and by item, so the headline intervals come from a bootstrap that resamples
both; Wilson intervals (votes treated as independent) sit beside them for comparison.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps
from statsmodels.stats.inter_rater import fleiss_kappa
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

BOOTSTRAP_METHOD = ("two-way cluster bootstrap: participants and items resampled independently "
                    "(with replacement), percentile intervals")
WILSON_METHOD = "Wilson score interval, votes treated as independent"
# Bounds the (resamples x items x methods) block held at once, so large studies stay within memory.
_CHUNK_CELLS = 4_000_000


@dataclass
class Bootstrap:
    """Resampled vote shares: shares[question] has shape (n_boot, n_methods), columns in `methods` order."""

    shares: dict[str, np.ndarray]
    methods: list[str]
    n_boot: int
    seed: int | None


def cluster_bootstrap(
    votes: pd.DataFrame, methods: list[str], questions: list[str], n_boot: int = 10_000, seed: int | None = 0
) -> Bootstrap:
    """Two-way (participant x item) cluster bootstrap of each question's vote shares, vectorised over resamples."""
    votes = votes[votes["question"].isin(questions)]
    p_idx, participants = pd.factorize(votes["participant_id"])
    i_idx, items = pd.factorize(votes["item_id"])
    q_idx, m_idx = _codes(votes, questions, methods)
    n_p, n_i, n_m, n_q = len(participants), len(items), len(methods), len(questions)
    cell = ((q_idx * n_p + p_idx) * n_i + i_idx) * n_m + m_idx
    counts = np.bincount(cell, minlength=n_q * n_p * n_i * n_m).astype(float).reshape(n_q, n_p, n_i, n_m)

    rng = np.random.default_rng(seed)
    shares = {q: np.full((n_boot, n_m), np.nan) for q in questions}
    chunk = max(1, _CHUNK_CELLS // max(1, n_i * n_m + n_p + n_i))
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        # Multinomial counts = how often each participant / item is drawn in a resample of the same size.
        w_part = rng.multinomial(n_p, np.full(n_p, 1.0 / n_p), size=b).astype(float)
        w_item = rng.multinomial(n_i, np.full(n_i, 1.0 / n_i), size=b).astype(float)
        for q_pos, question in enumerate(questions):
            shares[question][start:start + b] = resampled_shares(counts[q_pos], w_part, w_item)
    return Bootstrap(shares=shares, methods=list(methods), n_boot=n_boot, seed=seed)


def resampled_shares(counts: np.ndarray, w_part: np.ndarray, w_item: np.ndarray) -> np.ndarray:
    """Vote shares of resampled studies: counts (P, I, M) weighted by draw counts w_part (B, P) and w_item (B, I)."""
    n_p, n_i, n_m = counts.shape
    per_item = (w_part @ counts.reshape(n_p, n_i * n_m)).reshape(-1, n_i, n_m)   # participant-weighted, per item
    resampled = np.matmul(w_item[:, None, :], per_item)[:, 0, :]                 # then item-weighted: (B, M)
    total = resampled.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, resampled / total, np.nan)


def _codes(votes: pd.DataFrame, questions: list[str], methods: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of each vote's question and method; every value must be listed (filter questions first)."""
    q_idx = pd.Categorical(votes["question"], categories=questions).codes.astype(np.int64)
    m_idx = pd.Categorical(votes["method"], categories=methods).codes.astype(np.int64)
    if (m_idx < 0).any() or (q_idx < 0).any():
        raise ValueError("every voted method and question must be listed in `methods` and `questions`")
    return q_idx, m_idx


def vote_counts(votes: pd.DataFrame, methods: list[str]) -> np.ndarray:
    """Votes per method, in `methods` order, zeros included."""
    return votes["method"].value_counts().reindex(methods, fill_value=0).to_numpy(dtype=int)


def wilson(counts: np.ndarray, n: np.ndarray | int, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score intervals (statsmodels), NaN where there are no votes."""
    counts = np.asarray(counts, dtype=float)
    n = np.broadcast_to(np.asarray(n, dtype=float), counts.shape)
    low, high = np.full(counts.shape, np.nan), np.full(counts.shape, np.nan)
    ok = n > 0
    if ok.any():
        low[ok], high[ok] = proportion_confint(counts[ok], n[ok], alpha=1 - confidence, method="wilson")
    return low, high


def preference_shares(
    votes: pd.DataFrame, methods: list[str], questions: list[str], boot: Bootstrap | None, confidence: float = 0.95
) -> pd.DataFrame:
    """One row per question and method: votes, percent, bootstrap CI, bootstrap SE, Wilson CI (percent units)."""
    alpha = 1 - confidence
    votes = votes[votes["question"].isin(questions)]
    q_idx, m_idx = _codes(votes, questions, methods)
    n_q, n_m = len(questions), len(methods)
    counts = np.bincount(q_idx * n_m + m_idx, minlength=n_q * n_m).reshape(n_q, n_m)
    n = counts.sum(axis=1, keepdims=True)
    w_low, w_high = wilson(counts, n, confidence)
    b_low, b_high, b_se = (np.full((n_q, n_m), np.nan) for _ in range(3))
    for q_pos, question in enumerate(questions):
        shares = boot.shares.get(question) if boot is not None else None
        if shares is not None and np.isfinite(shares).any():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                b_low[q_pos], b_high[q_pos] = np.nanquantile(shares, [alpha / 2, 1 - alpha / 2], axis=0)
                b_se[q_pos] = np.nanstd(shares, axis=0, ddof=1)
    per_question = votes.groupby("question")[["participant_id", "item_id"]].nunique().reindex(questions)
    with np.errstate(invalid="ignore", divide="ignore"):
        percent = np.where(n > 0, 100 * counts / n, np.nan)
    return pd.DataFrame({
        "question": np.repeat(questions, n_m), "method": np.tile(methods, n_q),
        "votes": counts.ravel(), "n_votes": np.repeat(n.ravel(), n_m), "percent": percent.ravel(),
        "ci_low": 100 * b_low.ravel(), "ci_high": 100 * b_high.ravel(), "boot_se": 100 * b_se.ravel(),
        "wilson_low": 100 * w_low.ravel(), "wilson_high": 100 * w_high.ravel(),
        "participants": np.repeat(per_question["participant_id"].fillna(0).to_numpy(int), n_m),
        "items": np.repeat(per_question["item_id"].fillna(0).to_numpy(int), n_m),
    })


def item_agreement(votes: pd.DataFrame, methods: list[str]) -> tuple[float, int, int, int]:
    """Fleiss' kappa over an item x method count table: (kappa, items used, min raters, max raters)."""
    i_idx, items = pd.factorize(votes["item_id"])
    m_idx = pd.Categorical(votes["method"], categories=methods).codes.astype(np.int64)
    ok = (i_idx >= 0) & (m_idx >= 0)
    table = np.bincount(i_idx[ok] * len(methods) + m_idx[ok], minlength=len(items) * len(methods))
    table = table.reshape(len(items), len(methods)).astype(float)
    raters = table.sum(axis=1)
    table, raters = table[raters >= 2], raters[raters >= 2]   # agreement needs two raters on an item
    if len(table) == 0:
        return np.nan, 0, 0, 0
    p_cat = table.sum(axis=0) / table.sum()
    if np.isclose((p_cat ** 2).sum(), 1.0):
        kappa = np.nan   # everyone chose one method: chance agreement is 1 and kappa is undefined
    elif raters.min() == raters.max():
        kappa = float(fleiss_kappa(table, method="fleiss"))
    else:
        kappa = fleiss_kappa_unequal(table)
    return kappa, len(table), int(raters.min()), int(raters.max())


def fleiss_kappa_unequal(table: np.ndarray) -> float:
    """Fleiss' kappa with each item's own rater count (statsmodels' version needs the same count on every item)."""
    table = np.asarray(table, dtype=float)
    raters = table.sum(axis=1)
    agree = ((table * (table - 1)).sum(axis=1) / (raters * (raters - 1))).mean()
    chance = ((table.sum(axis=0) / table.sum()) ** 2).sum()
    return float((agree - chance) / (1 - chance))


def question_tests(
    votes: pd.DataFrame, methods: list[str], questions: list[str], boot: Bootstrap | None, confidence: float = 0.95
) -> pd.DataFrame:
    """Per question: chi-square vs uniform (plain, Rao-Scott), best vs second (binomial, bootstrap; Holm), kappa."""
    rows = []
    for question in questions:
        sub = votes[votes["question"] == question]
        counts = vote_counts(sub, methods)
        n, k = int(counts.sum()), len(methods)
        row = {"question": question, "n_votes": n, "methods": k}
        if k >= 2 and n > 0:
            chi = sps.chisquare(counts)
            row.update(chi2=float(chi.statistic), chi2_df=k - 1, chi2_p=float(chi.pvalue))
        else:
            row.update(chi2=np.nan, chi2_df=k - 1, chi2_p=np.nan)
        shares = boot.shares.get(question) if boot is not None else None
        # Rao-Scott first-order correction: divide chi-square by the mean design effect, which the two-way
        # bootstrap variance measures against the multinomial variance (1.0 when votes are independent).
        if shares is not None and n > 0 and k >= 2 and np.isfinite(row["chi2"]):
            var = np.nanvar(shares, axis=0, ddof=1)
            design_effect = float(n * k * var.sum() / (k - 1))
            row["design_effect"] = design_effect
            row["chi2_p_rao_scott"] = (float(sps.chi2.sf(row["chi2"] / design_effect, k - 1))
                                       if design_effect > 0 else np.nan)
        else:
            row.update(design_effect=np.nan, chi2_p_rao_scott=np.nan)

        order = np.argsort(-counts, kind="stable")   # ties keep the methods' listed order
        if k >= 2 and n > 0:
            best, second = int(order[0]), int(order[1])
            top = counts[order[0]]
            tied = [methods[j] for j in order if counts[j] == top]
            pair = int(counts[best] + counts[second])
            row.update(best=methods[best], second=methods[second], best_votes=int(counts[best]),
                       second_votes=int(counts[second]), tie=len(tied) > 1, tied_best=", ".join(tied),
                       binom_p=float(sps.binomtest(int(counts[best]), pair, 0.5).pvalue) if pair else np.nan)
            row["diff"] = 100 * (counts[best] - counts[second]) / n
            # Clustering-aware companion of the binomial test: the bootstrap's two-sided p for "no difference".
            row["diff_low"], row["diff_high"], row["diff_p_boot"] = boot_difference(shares, best, second, confidence)
        else:
            row.update(best=None, second=None, best_votes=np.nan, second_votes=np.nan, tie=False, tied_best="",
                       binom_p=np.nan, diff=np.nan, diff_low=np.nan, diff_high=np.nan, diff_p_boot=np.nan)
        kappa, kappa_items, raters_min, raters_max = item_agreement(sub, methods)
        row.update(fleiss_kappa=kappa, kappa_items=kappa_items, raters_min=raters_min, raters_max=raters_max)
        rows.append(row)
    tests = pd.DataFrame(rows, columns=[
        "question", "n_votes", "methods", "chi2", "chi2_df", "chi2_p", "design_effect", "chi2_p_rao_scott",
        "best", "second", "best_votes", "second_votes", "tie", "tied_best", "binom_p", "binom_p_holm",
        "diff", "diff_low", "diff_high", "diff_p_boot", "diff_p_boot_holm",
        "fleiss_kappa", "kappa_items", "raters_min", "raters_max",
    ])
    tests["binom_p_holm"] = holm(tests["binom_p"].to_numpy(float))
    tests["diff_p_boot_holm"] = holm(tests["diff_p_boot"].to_numpy(float))
    return tests


def boot_difference(shares: np.ndarray | None, a: int, b: int, confidence: float = 0.95
                    ) -> tuple[float, float, float]:
    """Share of method a minus method b over resamples: percentile interval (percent points) and two-sided p."""
    diff = np.array([]) if shares is None else shares[:, a] - shares[:, b]
    diff = diff[np.isfinite(diff)]
    if len(diff) == 0:
        return np.nan, np.nan, np.nan
    alpha = 1 - confidence
    low, high = np.quantile(diff, [alpha / 2, 1 - alpha / 2])
    # Add-one (Davison & Hinkley 1997): a resampling p is never 0, so its smallest value says how many resamples.
    tail = min(np.sum(diff <= 0), np.sum(diff >= 0))
    return float(100 * low), float(100 * high), float(min(1.0, 2 * (tail + 1) / (len(diff) + 1)))


def holm(pvalues: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values (statsmodels) across the finite entries; NaN stays NaN."""
    adjusted = np.full(len(pvalues), np.nan)
    ok = np.isfinite(pvalues)
    if ok.sum() == 1:
        adjusted[ok] = pvalues[ok]   # one test: nothing to correct for
    elif ok.any():
        adjusted[ok] = multipletests(pvalues[ok], method="holm")[1]
    return adjusted


def item_shares(votes: pd.DataFrame, methods: list[str], questions: list[str], confidence: float = 0.95
                ) -> pd.DataFrame:
    """One row per item, question and method: votes, percent and Wilson CI (few raters per item, so no bootstrap)."""
    counts = (votes.groupby(["item_id", "question", "method"]).size()
              .unstack("method").reindex(columns=methods).fillna(0).astype(int))
    counts = counts[counts.index.get_level_values("question").isin(questions)]
    long = counts.stack().rename("votes").reset_index()
    long["n_votes"] = long.groupby(["item_id", "question"])["votes"].transform("sum")
    long["percent"] = 100 * long["votes"] / long["n_votes"]
    low, high = wilson(long["votes"].to_numpy(), long["n_votes"].to_numpy(), confidence)
    long["wilson_low"], long["wilson_high"] = 100 * low, 100 * high
    meta = votes.groupby("item_id")[["item_group", "face_id", "expression"]].first().reset_index()
    long = long.merge(meta, on="item_id", how="left")
    long["question"] = pd.Categorical(long["question"], categories=questions, ordered=True)
    long["method"] = pd.Categorical(long["method"], categories=methods, ordered=True)
    long = long.sort_values(["item_id", "question", "method"]).reset_index(drop=True)
    long["question"], long["method"] = long["question"].astype(str), long["method"].astype(str)
    return long[["item_id", "item_group", "face_id", "expression", "question", "method", "votes", "n_votes",
                 "percent", "wilson_low", "wilson_high"]]
