"""Pre-specified contrasts (one method against each other, Holm across all) and the screen-position check.

    from analysis.checks import contrasts, position_bias
    table = contrasts(kept, methods, questions, boot, focus="US-GAN")
    positions = position_bias(kept, questions)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

from analysis.stats import Bootstrap, boot_difference, holm, vote_counts
from analysis.votes import VoteDataError


def contrasts(kept: pd.DataFrame, methods: list[str], questions: list[str], boot: Bootstrap, focus: str,
              confidence: float = 0.95) -> pd.DataFrame:
    """Per question, focus minus each other method: share difference, bootstrap CI and p, Holm over every row."""
    if focus not in methods:
        raise VoteDataError(f"--contrast {focus}: not a method of this study ({', '.join(methods)})")
    j = methods.index(focus)
    rows = []
    for question in questions:
        counts = vote_counts(kept[kept["question"] == question], methods)
        n = counts.sum()
        for k, other in enumerate(methods):
            if k == j:
                continue
            low, high, p = boot_difference(boot.shares.get(question), j, k, confidence)
            rows.append({"question": question, "method": focus, "versus": other, "votes": int(counts[j]),
                         "versus_votes": int(counts[k]), "diff": 100 * (counts[j] - counts[k]) / n if n else np.nan,
                         "diff_low": low, "diff_high": high, "p_boot": p})
    table = pd.DataFrame(rows, columns=["question", "method", "versus", "votes", "versus_votes", "diff", "diff_low",
                                        "diff_high", "p_boot"])
    # One family: every (question, other method) pair, as the pre-registration names them together.
    table["p_boot_holm"] = holm(table["p_boot"].to_numpy(float))
    return table


def position_bias(kept: pd.DataFrame, questions: list[str]) -> pd.DataFrame:
    """Per question, choices per screen position against a uniform split (chi-square, votes as independent)."""
    # Methods rotate through positions in a Latin square, so a position effect is the participants' habit
    # (e.g. always the first image), not a method's advantage: it adds noise, not bias, to the shares.
    positions = pd.to_numeric(kept["position"], errors="coerce")
    if positions.isna().all():
        return pd.DataFrame()
    n_positions = int(positions.max()) + 1
    rows = []
    for question in questions:
        picked = positions[(kept["question"] == question).to_numpy()].dropna().astype(int)
        counts = np.bincount(picked, minlength=n_positions)
        n = int(counts.sum())
        chi = sps.chisquare(counts) if n else None
        rows.append({"question": question, "votes": n,
                     **{f"pos{k + 1}_pct": 100 * c / n if n else np.nan for k, c in enumerate(counts)},
                     "chi2": float(chi.statistic) if chi else np.nan, "chi2_df": n_positions - 1,
                     "p": float(chi.pvalue) if chi else np.nan})
    return pd.DataFrame(rows)
