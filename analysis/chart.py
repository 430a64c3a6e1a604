"""The paper's Figure 9: grouped bars per question, one per method, with bootstrap error bars."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd


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
