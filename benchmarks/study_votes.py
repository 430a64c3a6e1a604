"""Votes stored per second and write latency with 50 concurrent participants, through study_app's data layer.

    python benchmarks/study_votes.py [--participants 50] [--trials 20] [--keep DIR]

Each participant is one thread (as each browser session is one thread of one Streamlit server): it enrolls, then
for each trial stamps the screen as shown and submits its three answers (one transaction, three vote rows). The
latency is that of one submit, the write a participant waits for before the next screen. Two phases, 50 new
participants each: saturated (no pause between screens: the capacity in votes/s) and paced (the same writers
offering --rate votes/s in total: the write latency at that load). Goal: >= 300 votes/s, p95 < 50 ms at 300/s.
Prints one JSON line last.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from machine import describe
from PIL import Image

from study_app import enrolment
from study_app import participation as part
from study_app.build import StudySpec, build_study
from study_app.db import StudyDB
from study_app.settings import EXPRESSIONS
from study_app.spec import StudyOptions

METHODS = ("m1", "m2", "m3", "m4")


def make_stimuli(root: Path, faces: int) -> None:
    """Tiny distinct images in the builder's layout; the benchmark measures storage, not images."""
    (root / "inputs").mkdir(parents=True, exist_ok=True)
    for f in range(faces):
        Image.new("RGB", (16, 16), (f * 9 % 256, 0, 0)).save(root / "inputs" / f"f{f}.png")
        for k, m in enumerate(METHODS):
            d = root / m / f"f{f}"
            d.mkdir(parents=True, exist_ok=True)
            for e, expr in enumerate(EXPRESSIONS):
                Image.new("RGB", (16, 16), (f * 9 % 256, k * 40, e * 30)).save(d / f"{expr}.png")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def run_phase(db: StudyDB, study_id: int, tag: str, participants: int, interval_s: float | None) -> dict:
    """All participants at once; interval_s paces each one's trials (None: back to back, the saturated case)."""
    latencies: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(participants)

    def participant(n: int) -> int:
        rng = random.Random(n)
        barrier.wait()
        pid = enrolment.enroll(db, study_id, f"{tag}-{n}")
        # Paced writers start at random offsets, as real participants never move in lockstep.
        next_at = time.perf_counter() + (rng.uniform(0, interval_s) if interval_s else 0)
        mine, votes = [], 0
        while (trial := part.progress(db, pid).trial) is not None:
            if interval_s:
                time.sleep(max(0.0, next_at - time.perf_counter()))
                next_at += interval_s
            if not trial.shown:
                part.mark_shown(db, trial.trial_id)
            answers = dict.fromkeys(part.questions_for(trial.is_catch), n % len(METHODS))
            t0 = time.perf_counter()
            part.submit(db, pid, trial.trial_id, answers)
            mine.append(time.perf_counter() - t0)
            votes += len(answers)
        with lock:
            latencies.extend(mine)
        return votes

    t0 = time.perf_counter()
    with ThreadPoolExecutor(participants) as pool:
        votes = sum(pool.map(participant, range(participants)))
    wall = time.perf_counter() - t0
    return {
        "votes": votes,
        "submits": len(latencies),
        "wall_s": round(wall, 3),
        # Whole sessions (enroll, progress reads, shown stamps, submits) over the wall time.
        "votes_per_s": round(votes / wall, 1),
        "p50_write_ms": round(statistics.median(latencies) * 1000, 2),
        "p95_write_ms": round(percentile(latencies, 95) * 1000, 2),
        "p99_write_ms": round(percentile(latencies, 99) * 1000, 2),
        "max_write_ms": round(max(latencies) * 1000, 2),
    }


def run(workdir: Path, participants: int, trials: int, catch: int, rate: float) -> dict:
    """Build a study, run a saturated then a paced phase of concurrent participants, return the measurements."""
    stimuli = workdir / "stimuli"
    make_stimuli(stimuli, faces=6)
    db = StudyDB(workdir / "bench.sqlite")
    spec = StudySpec(inputs=stimuli / "inputs", methods={m: stimuli / m for m in METHODS}, out=workdir / "study",
                     name="bench", seed=1,
                     options=StudyOptions(catch_trials=catch, trials_per_participant=trials, image_size=16))
    study_id = build_study(spec, db)
    saturated = run_phase(db, study_id, "sat", participants, None)
    votes_per_submit = (3 * trials + catch) / (trials + catch)
    paced = run_phase(db, study_id, "paced", participants, participants * votes_per_submit / rate)
    db.dispose()
    stored = sqlite3.connect(workdir / "bench.sqlite").execute("SELECT COUNT(*) FROM votes").fetchone()[0]
    return {"saturated": saturated, "paced": {"offered_votes_per_s": rate, **paced},
            "lost_or_duplicated": stored - saturated["votes"] - paced["votes"]}


def main() -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--participants", type=int, default=50, help="concurrent writers (default 50)")
    ap.add_argument("--trials", type=int, default=20, help="ordinary trials per participant (default 20)")
    ap.add_argument("--catch", type=int, default=2, help="catch trials per participant (default 2)")
    ap.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary one)")
    ap.add_argument("--rate", type=float, default=300, help="offered votes/s of the paced phase (default 300)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        phases = run(workdir, args.participants, args.trials, args.catch, args.rate)
    sat, paced = phases["saturated"], phases["paced"]
    result = {
        "benchmark": "study_votes",
        "concurrent_writers": args.participants,
        # Capacity: back-to-back sessions, no thinking time. Its latency is queueing (Little's law: 50 writers
        # in the system / throughput), so write latency is judged at the goal's offered load instead.
        "votes_per_s": sat["votes_per_s"],
        "p95_write_ms": paced["p95_write_ms"],
        "goal": {"votes_per_s": 300, "p95_write_ms": 50},
        "goal_met": sat["votes_per_s"] >= 300 and paced["p95_write_ms"] < 50,
        **phases,
        "machine": describe(sqlite=sqlite3.sqlite_version),
    }
    print(f"saturated: {sat['votes']} votes from {args.participants} concurrent participants in {sat['wall_s']} s "
          f"= {sat['votes_per_s']} votes/s (write p95 {sat['p95_write_ms']} ms, queueing); paced at "
          f"{args.rate:g} votes/s offered: {paced['votes_per_s']} votes/s, write p50 {paced['p50_write_ms']} ms, "
          f"p95 {paced['p95_write_ms']} ms; lost or duplicated: {phases['lost_or_duplicated']}", file=sys.stderr)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
