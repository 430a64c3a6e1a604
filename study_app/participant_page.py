"""The participant's screens: consent, instructions, trials, finish. State comes from the URL and the database."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import streamlit as st

from study_app import enrolment, information, routing
from study_app import participation as part
from study_app.db import StudyDB, open_db
from study_app.settings import CATCH_QUESTION_TEXT, PROXY_ENV, QUESTION_TEXT, demo_enabled
from study_app.spec import StudyOptions

log = logging.getLogger("study_app")
_proxy_warned: list[bool] = []


def shared_db() -> StudyDB:
    """The StudyDB of the configured path; open_db keeps one per file for the whole process (thread-safe)."""
    # Not st.cache_resource: that cache ignores USGAN_STUDY_DB, so a changed path would keep the old file.
    return open_db()


@st.cache_data(max_entries=512)
def image_bytes(path: str) -> bytes:
    """A stimulus file's bytes; handing st.image bytes (not a path) keeps file names out of the page."""
    return Path(path).read_bytes()


def client_address() -> str | None:
    """The participant's address for the per-address limit: the proxy's X-Forwarded-For entry when the operator
    says a proxy is in front, else the connection's own (None on localhost: no limit)."""
    if os.environ.get(PROXY_ENV, "") in ("1", "true", "yes"):
        # The last entry is the one our proxy wrote; anything before it came from the client and proves nothing.
        forwarded = st.context.headers.get("X-Forwarded-For", "")
        return forwarded.split(",")[-1].strip() or None
    if st.context.ip_address is None and st.context.headers.get("X-Forwarded-For") and not _proxy_warned:
        _proxy_warned.append(True)  # once per process
        log.warning("a proxy forwards requests but %s is not set: the per-address limit is off", PROXY_ENV)
    return st.context.ip_address


def render() -> None:
    """Route to the screen the participant is at; every screen is derived from the URL and the database."""
    db = shared_db()
    entry = routing.route(db, st.query_params, demo_enabled(), client_address())
    if isinstance(entry, routing.Refusal):
        refusal_screen(entry)
        return
    if entry.participant_id is None:
        if st.session_state.get("declined") == entry.study.id:
            declined_screen(entry.study.options)
            return
        public_id = entry.public_id
        if public_id is None and entry.platform_pid is None:
            # Put the generated id (and the study) into the URL: a refresh then finds the same participant.
            public_id = enrolment.new_public_id()
            st.query_params[routing.ID_PARAM] = public_id
            st.query_params[routing.STUDY_PARAM] = entry.study.name
        consent_screen(db, entry, public_id or enrolment.new_public_id())
        return
    progress = part.progress(db, entry.participant_id)
    if progress.answered == 0 and not progress.finished:
        # Not started: their place may have gone to a newcomer while they were away (the start window).
        lost = enrolment.keep_place(db, entry.participant_id)
        if lost is not None:
            refusal_screen(routing.Refusal(lost, entry.study.options))
            return
        progress = part.progress(db, entry.participant_id)
    if not progress.instructions_done:
        instructions_screen(db, entry.study, progress)
    elif progress.trial is not None:
        trial_screen(db, progress)
    else:
        finish_screen(db, entry.study, progress)


def way_out(instruction: str | None, code: str | None, url: str | None) -> None:
    """The way back to the platform for someone leaving without finishing: an instruction, a code, a link."""
    if instruction:
        st.markdown(instruction)
    if code:
        st.markdown("Your code:")
        st.code(code, language=None)
    if url:
        st.link_button("Return to the recruitment site", url, type="primary")


def refusal_screen(refusal: routing.Refusal) -> None:
    """One fixed sentence (nothing from the link is stored or echoed); for a known study, the way back."""
    (st.error if refusal.sentence == routing.INVALID_LINK else st.info)(refusal.sentence)
    if refusal.options is not None:
        way_out(*information.way_out(refusal.options, refusal.options.screen_out_code))


def declined_screen(options: StudyOptions) -> None:
    """After "I do not consent": nothing stored, and the way back (Prolific's return, or the no-consent code)."""
    st.title("Thank you")
    st.info(information.DECLINED)
    way_out(*information.way_out(options, options.no_consent_code))


def consent_screen(db: StudyDB, entry: routing.Entry, public_id: str) -> None:
    """Information and consent; agreeing creates the participant and their whole randomized plan."""
    st.title("Which face edit looks best?")
    consent = information.study_texts(db, entry.study.id).get("consent")
    time = information.estimate(db, entry.study.id)
    st.markdown(information.fill(consent.markdown if consent else information.DEFAULT_CONSENT, time.minutes,
                                 time.screens))
    agree = st.checkbox("I have read the information above and agree to take part.", key="consent_box")
    go, decline = st.columns([1, 3])
    if go.button("Continue", type="primary", disabled=not agree, key="consent_go"):
        try:
            enrolment.enroll(db, entry.study.id, public_id, entry.platform_pid, entry.platform_study_id,
                             entry.platform_session_id, client_address())
        except enrolment.NotEnrolling as closed:  # paused, closed or filled while the form was open
            refusal_screen(routing.Refusal(str(closed), entry.study.options))
            return
        st.rerun()
    if decline.button("I do not consent", key="consent_decline"):
        st.session_state["declined"] = entry.study.id
        st.rerun()


def instructions_screen(db: StudyDB, study: part.StudyView, progress: part.Progress) -> None:
    """What a screen looks like and how to answer, with a worked example."""
    st.title("Instructions")
    st.markdown(
        f"Each screen shows the **input face** on the left and **{study.n_methods} edited versions** of it, "
        "numbered Image 1 to Image {n}. Each edit tries to give the face a **target expression**, named above "
        "the images. Answer three questions, one image each:\n\n"
        "1. Which image looks most **realistic**? Ignore the expression; judge only how natural the photo looks.\n"
        "2. Which image shows the most **convincing** target expression?\n"
        "3. Which image best **preserves the identity** of the input face (looks like the same person)?\n\n"
        "You may pick the same image for several questions. There are no right or wrong answers, except on a "
        "few **attention-check** screens, which tell you plainly which image to pick.\n\n"
        "**Example.** The target is *happy*. Image 2 has a broad smile but blurry eyes, Image 3 is sharp with "
        "a faint smile. You might answer: realistic: Image 3; convincing expression: Image 2; identity: "
        "whichever looks most like the input person."
        .replace("{n}", str(study.n_methods)))
    if progress.trial is not None:
        st.image(image_bytes(str(progress.trial.input_path)), caption="An input face, as shown on the left",
                 width=160, output_format="PNG")
    st.markdown(f"There are **{progress.total} screens**. Your answers are saved after each screen, so if the "
                "page reloads you continue where you were.")
    if st.button("Start", type="primary", key="instructions_go"):
        part.finish_instructions(db, progress.participant_id)
        st.rerun()


def trial_screen(db: StudyDB, progress: part.Progress) -> None:
    """One trial: input left, candidates in their stored order, the questions in one form."""
    trial = progress.trial
    assert trial is not None
    # Every file is read before anything is drawn: a missing stimulus shows the neutral error alone.
    pictures = [image_bytes(str(path)) for path in (trial.input_path, *trial.candidate_paths)]
    n = len(trial.candidate_paths)
    st.progress(progress.answered / progress.total, text=f"Screen {progress.answered + 1} of {progress.total}")
    st.subheader(f"Target expression: {trial.expression}")
    questions = part.questions_for(trial.is_catch)
    cols = st.columns([1.15, 0.15] + [1] * n)
    with cols[0]:
        st.image(pictures[0], caption="Input face", width="stretch", output_format="PNG")
    for pos, picture in enumerate(pictures[1:]):
        with cols[pos + 2]:
            # Captions and alt text name only the screen position, never anything stored with the image.
            st.image(picture, caption=f"Image {pos + 1}", width="stretch", output_format="PNG")
    if not trial.shown:
        # The response clock starts here, once the images are on their way, not at the previous commit.
        part.mark_shown(db, trial.trial_id)
    labels = [f"Image {i + 1}" for i in range(n)]
    # The form key carries the trial id: a late second click belongs to a form that no longer exists.
    with st.form(key=f"trial-{trial.trial_id}"):
        # A catch trial's instruction is its question's own label (Prolific: the check is in the question).
        text = CATCH_QUESTION_TEXT if trial.is_catch else QUESTION_TEXT
        choices = {q: st.radio(text[q].format(expression=trial.expression), options=list(range(n)),
                               format_func=lambda i: labels[i], index=None, horizontal=True,
                               key=f"t{trial.trial_id}-{q}") for q in questions}
        submitted = st.form_submit_button("Submit and continue", type="primary")
    if submitted:
        if any(v is None for v in choices.values()):
            st.warning("Please answer every question before continuing.")
            return
        # Committed before the rerun draws the next screen; a repeated submit of this trial is a no-op.
        part.submit(db, progress.participant_id, trial.trial_id, {q: int(v) for q, v in choices.items()})
        st.rerun()


def finish_screen(db: StudyDB, study: part.StudyView, progress: part.Progress) -> None:
    """Shown only once the database holds every answer: the debrief, the completion code and the way back."""
    st.progress(1.0, text=f"Screen {progress.total} of {progress.total}")
    st.title("Thank you!")
    st.success("All your answers are saved.")
    debrief = information.study_texts(db, study.id).get("debrief")
    if debrief is not None:
        time = information.estimate(db, study.id)
        st.markdown(information.fill(debrief.markdown, time.minutes, time.screens))
    code, url = part.completion(study, progress.excluded)
    st.markdown("Your completion code:")
    st.code(code, language=None)
    if url:
        st.link_button("Return to the recruitment site to confirm completion", url, type="primary")
