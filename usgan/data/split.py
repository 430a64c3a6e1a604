"""Subject-disjoint train/test split: no person appears on both sides, so test faces are unseen identities."""
from __future__ import annotations

import json
import math
import random
from pathlib import Path

from .readers import Record


def split_subjects(records: list[Record], test_fraction: float = 0.1, seed: int = 0) -> tuple[set, set]:
    """(train_subjects, test_subjects), chosen per source so each dataset is represented in the test set."""
    by_source: dict[str, list[str]] = {}
    for r in records:
        by_source.setdefault(r.source, [])
        if r.subject not in by_source[r.source]:
            by_source[r.source].append(r.subject)
    rng = random.Random(seed)
    test = set()
    for source in sorted(by_source):
        subjects = sorted(by_source[source])
        rng.shuffle(subjects)
        n_test = min(len(subjects) - 1, max(1, math.ceil(test_fraction * len(subjects)))) if len(subjects) > 1 else 0
        test.update(subjects[:n_test])
    train = {r.subject for r in records} - test
    return train, test


def write_split(path, train: set, test: set, records: list[Record], seed: int, test_fraction: float) -> None:
    """Record the split beside the run so evaluation uses exactly these test subjects."""
    Path(path).write_text(json.dumps({
        "seed": seed, "test_fraction": test_fraction,
        "n_train_images": sum(r.subject in train for r in records),
        "n_test_images": sum(r.subject in test for r in records),
        "train_subjects": sorted(train), "test_subjects": sorted(test)}, indent=1))
