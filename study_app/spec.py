"""What a study is built from, the options stored with it, and the settings that could never work."""

from __future__ import annotations

import re
import secrets
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from study_app.settings import EXPRESSIONS, RECRUITMENT_MODES
from vote_format import DEFAULT_MAX_FAILED_CATCH

# Study names are also the `study` URL parameter: no characters a URL would change ('+' is a space there).
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# Prolific's own form of a study id; a study built for Prolific is reached only with this STUDY_ID.
PROLIFIC_ID_RE = re.compile(r"^[0-9a-f]{24}$")
# Codes are shown on the page and typed into Prolific: plain characters only.
CODE_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


# The pace assumed before anyone has taken part (three questions over five images per screen); the estimate
# shown to participants switches to the measured pace once the study or its pilot has finishers.
DEFAULT_SECONDS_PER_SCREEN = 20.0
# Prolific's attention-check policy: in a study of 5 minutes or more a participant may be rejected only after
# failing at least two checks.
PROLIFIC_MIN_CHECKS = 2


class StudyBuildError(ValueError):
    """A study that cannot be built; the message lists every problem found."""


@dataclass
class StudySpec:
    """Everything a study is built from; the CLI flags and the YAML file fill the same fields."""

    inputs: Path
    methods: dict[str, Path]
    out: Path
    name: str = "study"
    seed: int | None = None
    expressions: tuple[str, ...] = EXPRESSIONS
    groups: dict[str, str] = field(default_factory=dict)
    catch_trials: int = 2
    trials_per_participant: int | None = None
    completion_code: str | None = None
    failed_checks_code: str | None = None
    exclude_after_failed_checks: int = DEFAULT_MAX_FAILED_CATCH
    redirect_url: str | None = None
    image_size: int = 256
    recruitment: str = "link"
    prolific_study_id: str | None = None
    max_participants: int | None = None
    slot_timeout_minutes: float = 60.0
    start_window_minutes: float = 10.0
    enrolments_per_address_per_hour: int | None = None
    consent: Path | None = None
    debrief: Path | None = None
    no_consent_code: str | None = None
    screen_out_code: str | None = None
    exclude_participants_of: tuple[str, ...] = ()
    exclude_pids_file: Path | None = None
    seconds_per_screen: float = DEFAULT_SECONDS_PER_SCREEN
    pilot_of: str | None = None


def setting_problems(spec: StudySpec, n_items: int | None = None) -> list[str]:
    """Every setting that is out of range or could never take effect; n_items once the stimuli are known."""
    problems = []
    k, catch = spec.exclude_after_failed_checks, spec.catch_trials
    if catch < 0 or k < 0:
        problems.append("catch_trials and exclude_after_failed_checks must be 0 or more")
    elif k > catch:
        problems.append(f"exclude_after_failed_checks {k} can never fire with {catch} catch trial(s); "
                        f"use at most {catch}, or 0 for no exclusion")
    if spec.failed_checks_code and k == 0:
        problems.append("failed_checks_code is never shown when exclude_after_failed_checks is 0")
    per = spec.trials_per_participant
    if per is not None and (per < 1 or (n_items is not None and per > n_items)):
        problems.append(f"trials_per_participant must be between 1 and the number of items"
                        f"{f' ({n_items})' if n_items is not None else ''}, or omitted for all; got {per}")
    if spec.image_size < 16:
        problems.append("image_size must be at least 16")
    for name in ("completion_code", "failed_checks_code", "no_consent_code", "screen_out_code"):
        value = getattr(spec, name)
        if value is not None and not CODE_RE.match(value):
            problems.append(f"{name} must be 1-64 letters, digits, '_' or '-'")
    if spec.recruitment not in RECRUITMENT_MODES:
        problems.append(f"recruitment must be one of {', '.join(RECRUITMENT_MODES)}; got {spec.recruitment!r}")
    if spec.recruitment == "prolific":
        if not PROLIFIC_ID_RE.match(spec.prolific_study_id or ""):
            problems.append("a prolific study needs prolific_study_id, Prolific's 24-character study id")
        if spec.redirect_url:
            problems.append("redirect_url does not apply to a prolific study: its participants always return "
                            "through Prolific's completion link")
        problems += _prolific_problems(spec)
    else:
        for name in ("prolific_study_id", "exclude_participants_of", "exclude_pids_file"):
            if getattr(spec, name):
                problems.append(f"{name} is only for recruitment: prolific")
    if spec.redirect_url and not re.match(r"^https?://", spec.redirect_url):
        problems.append("redirect_url must start with https:// (or http://)")
    if spec.max_participants is not None and spec.max_participants < 1:
        problems.append("max_participants must be 1 or more, or omitted for no cap")
    for name in ("slot_timeout_minutes", "start_window_minutes", "seconds_per_screen"):
        if not getattr(spec, name) > 0:
            problems.append(f"{name} must be more than 0")
    per_address = spec.enrolments_per_address_per_hour
    if per_address is not None and per_address < 1:
        problems.append("enrolments_per_address_per_hour must be 1 or more, or omitted for no limit")
    if len(set(spec.expressions)) != len(spec.expressions):
        twice = sorted({e for e in spec.expressions if spec.expressions.count(e) > 1})
        problems.append(f"expressions listed more than once: {', '.join(twice)}")
    return problems


def _prolific_problems(spec: StudySpec) -> list[str]:
    """What a paid Prolific study needs beyond any study: Prolific's check rule, a consent text with contacts."""
    problems = []
    policy = ("Prolific rejects for failed attention checks only after at least 2 failures in a study of "
              "5 minutes or more")
    if spec.catch_trials < PROLIFIC_MIN_CHECKS:
        problems.append(f"a prolific study needs at least {PROLIFIC_MIN_CHECKS} catch trials, got "
                        f"{spec.catch_trials}: {policy}")
    if 0 < spec.exclude_after_failed_checks < PROLIFIC_MIN_CHECKS:
        problems.append(f"exclude_after_failed_checks {spec.exclude_after_failed_checks} is too strict for a "
                        f"prolific study: {policy}; use {PROLIFIC_MIN_CHECKS} or more (or 0: no exclusion)")
    if spec.consent is None:
        problems.append("a prolific study needs consent: a Markdown file naming the researcher, a contact, the "
                        "ethics approval and how long the data are kept")
    return problems


def check_settings(spec: StudySpec, n_items: int | None = None) -> None:
    """Raise one StudyBuildError listing every problem of setting_problems."""
    problems = setting_problems(spec, n_items)
    if problems:
        raise StudyBuildError("cannot build the study:\n  " + "\n  ".join(problems))


@dataclass(frozen=True)
class StudyOptions:
    """The settings stored with a study (a JSON column) and read by the pages; the defaults fill older rows."""

    catch_trials: int = 2
    trials_per_participant: int | None = None   # None: every item
    completion_code: str = ""
    failed_checks_code: str | None = None
    exclude_after_failed_checks: int = DEFAULT_MAX_FAILED_CATCH   # 0: no exclusion
    redirect_url: str | None = None
    image_size: int = 256
    recruitment: str = "link"
    prolific_study_id: str | None = None
    max_participants: int | None = None   # None: no cap
    slot_timeout_minutes: float = 60.0
    start_window_minutes: float = 10.0   # a place holds this long before the first answer
    enrolments_per_address_per_hour: int | None = None   # None: no limit
    no_consent_code: str | None = None
    screen_out_code: str | None = None
    exclude_participants_of: tuple[str, ...] = ()
    seconds_per_screen: float = DEFAULT_SECONDS_PER_SCREEN
    pilot_of: str | None = None   # the study this one pilots: its finishers measure that study's pace

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> StudyOptions:
        """Options from the stored JSON; keys this version does not know are ignored, missing ones defaulted."""
        known = {f.name for f in fields(cls)}
        kept = {k: v for k, v in (stored or {}).items() if k in known and v is not None}
        if "exclude_participants_of" in kept:
            kept["exclude_participants_of"] = tuple(kept["exclude_participants_of"])
        return cls(**kept)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "exclude_participants_of": list(self.exclude_participants_of)}


def study_options(spec: StudySpec) -> StudyOptions:
    """The options stored with the study; a study without its own completion code gets a random one."""
    kept = {f.name: getattr(spec, f.name) for f in fields(StudyOptions)}
    return StudyOptions(**{**kept, "completion_code": spec.completion_code or secrets.token_hex(4).upper()})


def participant_link(name: str, recruitment: str) -> str:
    """The link to hand out, with the host left for the researcher to fill in."""
    if recruitment == "prolific":
        return ("https://YOUR.HOST/?PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}"
                "&SESSION_ID={{%SESSION_ID%}}")
    return f"https://YOUR.HOST/?study={name}"
