"""The data report: per source, images per expression, subjects, the split, what was left out and why, and how
subjects and labels were read. `usgan-data check` prints it; training prints its lines and stops on its problems.

    report = data_report(data.sources, data)     # a dict that json.dumps as is
    print("\n".join(report_lines(report)))
"""
from __future__ import annotations

from collections import Counter

from ..errors import DatasetError
from .expressions import EXPRESSIONS
from .readers import PER_IMAGE

UNREADABLE = "unreadable image (--skip-bad)"


def _skipped(groups: dict) -> dict:
    return {why: {"count": len(names), "examples": names[:3]}
            for why, names in sorted(groups.items(), key=lambda kv: -len(kv[1]))}


def source_report(log, data=None) -> dict:
    """One source's figures; `data` (the cached, split FaceData) adds what decoding dropped and the split."""
    kept = []
    if data is not None and log.records:
        at = {r.path: i for i, r in enumerate(data.records)}
        kept = [at[r.path] for r in log.records if r.path in at]
    skipped = dict(log.skipped)
    kept_paths = {data.records[i].path for i in kept} if data is not None else set()
    dropped = [r.path for r in log.records if r.path not in kept_paths] if data is not None else []
    if dropped:
        skipped[UNREADABLE] = dropped
    labels = Counter(data.records[i].label for i in kept) if data is not None else Counter()
    train = set(data.train_idx.tolist()) if data is not None else set()
    subjects = {data.records[i].subject for i in kept} if data is not None else set()
    per_image = sum(n for how, n in log.subjects_from.items() if how.startswith(PER_IMAGE))
    side = lambda idx: {"images": len(idx), "subjects": len({data.records[i].subject for i in idx})}  # noqa: E731
    return {
        "spec": log.spec,
        "error": log.error,
        "images": len(kept),
        "expressions": {name: labels.get(k, 0) for k, name in enumerate(EXPRESSIONS)},
        "subjects": len(subjects),
        "train": side([i for i in kept if i in train]) if data is not None else None,
        "test": side([i for i in kept if i not in train]) if data is not None else None,
        "skipped": _skipped(skipped),
        "subjects_from": dict(log.subjects_from.most_common()),
        # A split over images of unknown people may put one person on both sides.
        "subject_disjoint": per_image == 0,
        "labels_from": log.labels_from,
    }


def problems(sources: list[dict]) -> list[str]:
    """What would make a run meaningless, one line each: a source that failed or yields nothing."""
    out = []
    for s in sources:
        if s["error"]:
            out.append(f"{s['spec']}: {s['error']}")
        elif s["images"] == 0:
            why = "; ".join(f"{g['count']} {reason}" for reason, g in s["skipped"].items())
            out.append(f"{s['spec']} yields no images (left out: {why or 'nothing found'}); check the path and "
                       "the layout with usgan-data check")
    return out


def warnings(sources: list[dict]) -> list[str]:
    """What a run survives but a user should know: missing expressions, a split that is not by person."""
    out = []
    for s in sources:
        if s["error"] or not s["images"]:
            continue
        missing = [e for e, n in s["expressions"].items() if n == 0]
        if missing:
            out.append(f"{s['spec']} has no {', '.join(missing)} images")
        if not s["subject_disjoint"]:
            out.append(f"{s['spec']}: subjects unknown for some images ({PER_IMAGE}), so its train/test split is "
                       "by image, not by person")
    return out


def data_report(logs: list, data=None) -> dict:
    """Every source's figures, the totals, the problems that stop a run and the warnings that do not."""
    sources = [source_report(log, data) for log in logs]
    total = {"images": sum(s["images"] for s in sources),
             "subjects": len({r.subject for r in data.records}) if data is not None else 0,
             "train_images": len(data.train_idx) if data is not None else 0,
             "test_images": len(data.test_idx) if data is not None else 0}
    found = problems(sources)
    return {"ok": not found, "sources": sources, "total": total, "problems": found, "warnings": warnings(sources)}


def require_images(report: dict) -> None:
    """Stop, in one line, when a source yields nothing."""
    if report["problems"]:
        raise DatasetError(report["problems"][0])


def report_lines(report: dict) -> list[str]:
    """The report as text, a few lines per source."""
    lines = []
    for s in report["sources"]:
        if s["error"]:
            lines.append(f"{s['spec']}: ERROR {s['error']}")
            continue
        lines.append(f"{s['spec']}: {s['images']} images, {s['subjects']} subjects")
        lines.append("  " + "  ".join(f"{e} {n}" for e, n in s["expressions"].items()))
        if s["train"]:
            lines.append(f"  split: {s['train']['images']} train images ({s['train']['subjects']} subjects) / "
                         f"{s['test']['images']} test ({s['test']['subjects']} subjects)"
                         + ("" if s["subject_disjoint"] else ", by image: subjects unknown"))
        lines.append(f"  labels: {s['labels_from']}")
        lines.append("  subjects: " + "; ".join(f"{how} ({n})" for how, n in s["subjects_from"].items()))
        for why, g in s["skipped"].items():
            lines.append(f"  skipped {g['count']}: {why} (e.g. {', '.join(g['examples'])})")
    t = report["total"]
    lines.append(f"total: {t['images']} images, {t['subjects']} subjects, "
                 f"{t['train_images']} train / {t['test_images']} test")
    lines += [f"warning: {w}" for w in report["warnings"]]
    lines += [f"problem: {p}" for p in report["problems"]]
    return lines
