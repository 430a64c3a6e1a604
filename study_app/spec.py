"""What a study is built from, the options stored with it, and the settings that could never work."""

from __future__ import annotations

import re
import secrets
import types
import typing
from dataclasses import MISSING, Field, asdict, dataclass, field, fields, replace
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


def setting(default: Any, help: str, **flag: str) -> Any:
    """A field that a study file and a builder flag both set; `flag` gives the flag a name or metavar of its own."""
    if isinstance(default, dict):  # each spec gets its own mapping
        return field(default_factory=dict, metadata={"help": help, **flag})
    return field(default=default, metadata={"help": help, **flag})


@dataclass(frozen=True)
class StudyOptions:
    """The settings stored with a study (a JSON column) and read by the pages; the defaults fill older rows."""

    catch_trials: int = setting(2, "catch trials per participant (default 2)")
    trials_per_participant: int | None = setting(None, "items each participant sees (default: all)")
    completion_code: str | None = setting(None, "code shown at the end / sent to Prolific (default: random)")
    failed_checks_code: str | None = setting(None, "code for participants who failed too many catch trials")
    exclude_after_failed_checks: int = setting(
        DEFAULT_MAX_FAILED_CATCH, f"failed catch trials that exclude (default {DEFAULT_MAX_FAILED_CATCH}; 0: none)")
    redirect_url: str | None = setting(None, "completion URL with {code}, for recruitment link only")
    image_size: int = setting(256, "side of every re-encoded image in pixels (default 256)")
    recruitment: str = setting("link", "prolific, link (anonymous, the default) or pilot")
    prolific_study_id: str | None = setting(None, "Prolific's id of this study (24 hex characters), for prolific")
    max_participants: int | None = setting(None, "cap on places, held or finished (default: none)")
    slot_timeout_minutes: float = setting(60.0, "a participant quiet this long gives their place back (default 60)")
    start_window_minutes: float = setting(10.0, "a place holds this long before the first answer (default 10)")
    enrolments_per_address_per_hour: int | None = setting(
        None, "enrolments one network address may make in an hour (default: no limit)")
    no_consent_code: str | None = setting(None, "code for those who do not consent (default: return instruction)")
    screen_out_code: str | None = setting(
        None, "code for those turned away: paused, full, took part before (default: return instruction)")
    exclude_participants_of: tuple[str, ...] = setting(
        (), "comma-separated studies in this database whose participants are turned away, for prolific")
    seconds_per_screen: float = setting(
        DEFAULT_SECONDS_PER_SCREEN, f"pace assumed before the study or its pilot has finishers "
                                    f"(default {DEFAULT_SECONDS_PER_SCREEN:g})")
    pilot_of: str | None = None   # set by --pilot: the study this one pilots, whose pace its finishers measure

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


@dataclass(frozen=True)
class StudySpec:
    """Everything a study is built from: where its images are, what it is called, and the options stored with it."""

    inputs: Path = setting(MISSING, "folder of input faces <face_id>.<png|jpg|jpeg>")
    methods: dict[str, Path] = setting(MISSING, "a compared method and its output folder (2 or more)",
                                       flag="--method", metavar="NAME=DIR")
    out: Path = setting(MISSING, "study folder the re-encoded images are written to")
    name: str = setting("study", "study name (unique in the database; the `study` URL parameter)")
    seed: int | None = setting(None, "randomization seed (default: random, stored)")
    expressions: tuple[str, ...] = setting(EXPRESSIONS, "comma-separated target expressions (default: all 7)")
    groups: dict[str, str] = setting({}, "CSV face_id,item_group (e.g. in/out of the training set)")
    consent: Path | None = setting(None, "Markdown file participants read before agreeing")
    debrief: Path | None = setting(None, "Markdown file shown with the completion code")
    exclude_pids_file: Path | None = setting(None, "Prolific ids to turn away, one a line, for prolific")
    options: StudyOptions = field(default_factory=StudyOptions)

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> StudySpec:
        """A spec from settings at one level, as a study file and the flags give them; options' keys go to options."""
        stored = {f.name for f in fields(StudyOptions)}
        options = StudyOptions(**{k: v for k, v in settings.items() if k in stored})
        return cls(**{k: v for k, v in settings.items() if k not in stored}, options=options)


def setting_fields() -> list[tuple[Field, Any]]:
    """Every setting of a study file and of the flags, with its type less None: StudySpec's own, then its options'."""
    found = []
    for cls in (StudySpec, StudyOptions):
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            if "help" in f.metadata:
                kind = hints[f.name]
                if isinstance(kind, types.UnionType):
                    (kind,) = (a for a in typing.get_args(kind) if a is not type(None))
                found.append((f, kind))
    return found


def setting_problems(spec: StudySpec, n_items: int | None = None) -> list[str]:
    """Every setting that is out of range or could never take effect; n_items once the stimuli are known."""
    options = spec.options
    problems = []
    k, catch = options.exclude_after_failed_checks, options.catch_trials
    if catch < 0 or k < 0:
        problems.append("catch_trials and exclude_after_failed_checks must be 0 or more")
    elif k > catch:
        problems.append(f"exclude_after_failed_checks {k} can never fire with {catch} catch trial(s); "
                        f"use at most {catch}, or 0 for no exclusion")
    if options.failed_checks_code and k == 0:
        problems.append("failed_checks_code is never shown when exclude_after_failed_checks is 0")
    per = options.trials_per_participant
    if per is not None and (per < 1 or (n_items is not None and per > n_items)):
        problems.append(f"trials_per_participant must be between 1 and the number of items"
                        f"{f' ({n_items})' if n_items is not None else ''}, or omitted for all; got {per}")
    if options.image_size < 16:
        problems.append("image_size must be at least 16")
    for name in ("completion_code", "failed_checks_code", "no_consent_code", "screen_out_code"):
        value = getattr(options, name)
        if value is not None and not CODE_RE.match(value):
            problems.append(f"{name} must be 1-64 letters, digits, '_' or '-'")
    if options.recruitment not in RECRUITMENT_MODES:
        problems.append(f"recruitment must be one of {', '.join(RECRUITMENT_MODES)}; got {options.recruitment!r}")
    if options.recruitment == "prolific":
        if not PROLIFIC_ID_RE.match(options.prolific_study_id or ""):
            problems.append("a prolific study needs prolific_study_id, Prolific's 24-character study id")
        if options.redirect_url:
            problems.append("redirect_url does not apply to a prolific study: its participants always return "
                            "through Prolific's completion link")
        problems += _prolific_problems(spec)
    else:
        prolific_only = (("prolific_study_id", options.prolific_study_id),
                         ("exclude_participants_of", options.exclude_participants_of),
                         ("exclude_pids_file", spec.exclude_pids_file))
        for name, value in prolific_only:
            if value:
                problems.append(f"{name} is only for recruitment: prolific")
    if options.redirect_url and not re.match(r"^https?://", options.redirect_url):
        problems.append("redirect_url must start with https:// (or http://)")
    if options.max_participants is not None and options.max_participants < 1:
        problems.append("max_participants must be 1 or more, or omitted for no cap")
    for name in ("slot_timeout_minutes", "start_window_minutes", "seconds_per_screen"):
        if not getattr(options, name) > 0:
            problems.append(f"{name} must be more than 0")
    per_address = options.enrolments_per_address_per_hour
    if per_address is not None and per_address < 1:
        problems.append("enrolments_per_address_per_hour must be 1 or more, or omitted for no limit")
    if len(set(spec.expressions)) != len(spec.expressions):
        twice = sorted({e for e in spec.expressions if spec.expressions.count(e) > 1})
        problems.append(f"expressions listed more than once: {', '.join(twice)}")
    return problems


def _prolific_problems(spec: StudySpec) -> list[str]:
    """What a paid Prolific study needs beyond any study: Prolific's check rule, a consent text with contacts."""
    options = spec.options
    problems = []
    policy = ("Prolific rejects for failed attention checks only after at least 2 failures in a study of "
              "5 minutes or more")
    if options.catch_trials < PROLIFIC_MIN_CHECKS:
        problems.append(f"a prolific study needs at least {PROLIFIC_MIN_CHECKS} catch trials, got "
                        f"{options.catch_trials}: {policy}")
    if 0 < options.exclude_after_failed_checks < PROLIFIC_MIN_CHECKS:
        problems.append(f"exclude_after_failed_checks {options.exclude_after_failed_checks} is too strict for a "
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


def study_options(spec: StudySpec) -> StudyOptions:
    """The options stored with the study; a study without its own completion code gets a random one."""
    return replace(spec.options, completion_code=spec.options.completion_code or secrets.token_hex(4).upper())


def participant_link(name: str, recruitment: str) -> str:
    """The link to hand out, with the host left for the researcher to fill in."""
    if recruitment == "prolific":
        return ("https://YOUR.HOST/?PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}"
                "&SESSION_ID={{%SESSION_ID%}}")
    return f"https://YOUR.HOST/?study={name}"
