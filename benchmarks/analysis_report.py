"""Time the full preference report on the paper's study size; the last line printed is one JSON object.

    python benchmarks/analysis_report.py                 # 80 participants x 18 items x 3 questions, 10,000 resamples
    python benchmarks/analysis_report.py --repeats 5 --n-boot 10000

`seconds` is the median in-process time of build_report + the text, Markdown and JSON renderings (what the
command computes); `with_chart_seconds` adds writing every file of --out (CSV tables, PNG and SVG);
`cli_seconds` is the whole `python analysis/preferences.py --csv ...` run, interpreter start and imports included.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import describe

from analysis.preferences import build_report, format_markdown, format_text, report_to_json, write_report
from analysis.simulate import simulate_study

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    """Run the benchmark and print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=80)
    parser.add_argument("--items", type=int, default=18)
    parser.add_argument("--n-boot", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    votes = simulate_study(n_participants=args.participants, n_items=args.items, n_catch=3,
                           inattentive_fraction=0.05, seed=args.seed)
    build_report(votes, n_boot=200)  # warm-up: first-call imports and caches are not the report's cost

    report_times, chart_times = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.repeats):
            start = time.perf_counter()
            report = build_report(votes, n_boot=args.n_boot, seed=args.seed + k)
            format_text(report), format_markdown(report), report_to_json(report)
            report_times.append(time.perf_counter() - start)
            write_report(report, Path(tmp) / f"out{k}")
            chart_times.append(time.perf_counter() - start)
        csv_path = Path(tmp) / "votes.csv"
        votes.to_csv(csv_path, index=False)
        start = time.perf_counter()
        cli = subprocess.run([sys.executable, "analysis/preferences.py", "--csv", str(csv_path), "--n-boot",
                              str(args.n_boot), "--out", str(Path(tmp) / "cli")], cwd=ROOT, capture_output=True,
                             text=True)
        cli_seconds = time.perf_counter() - start
    if cli.returncode != 0:
        raise SystemExit(f"the command failed: {cli.stderr.strip()}")

    print(format_text(report).split("\n\nTests per question")[0])
    print(json.dumps({
        "benchmark": "analysis_report",
        "seconds": round(statistics.median(report_times), 3),
        "seconds_all": [round(t, 3) for t in report_times],
        "with_chart_seconds": round(statistics.median(chart_times), 3),
        "cli_seconds": round(cli_seconds, 3),
        "n_boot": args.n_boot,
        "participants": args.participants,
        "items": args.items,
        "questions": 3,
        "votes": report.meta["votes"],
        "goal_seconds": 5.0,
        "machine": describe(),
    }))


if __name__ == "__main__":
    main()
