"""Admin page (/admin), behind a secret: status and places, progress, participants, exclusions, exports, chart."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from study_app import information, reports
from study_app.admin_auth import authorized
from study_app.participant_page import shared_db
from study_app.spec import StudyOptions, participant_link

STATUS_ACTIONS = {"open": ("Pause", "Close"), "paused": ("Open", "Close"), "closed": ()}


def preference_chart(votes: pd.DataFrame, methods: list[str], max_failed_catch: int | None) -> None:
    """The analysis package's preference table and bar chart; a clear note where it is not installed."""
    try:
        # The one import of analysis in the app, through its public API (analysis/preferences.py).
        from analysis.preferences import plot_preferences, preference_table
    except ImportError as err:
        st.info(f"The preference chart needs the `analysis` package (analysis/preferences.py): {err}")
        return
    try:
        # The study's methods, so a method nobody chose still gets its (zero) bar.
        table = preference_table(votes, methods, max_failed_catch=max_failed_catch)
    except Exception as err:  # noqa: BLE001  (e.g. no votes left after exclusions: show why, keep the page)
        st.info(f"No preference chart yet: {err}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        written = plot_preferences(table, Path(tmp) / "preferences")
        png = next((p for p in map(Path, written) if p.suffix == ".png"), None)
        if png is not None:
            st.image(png.read_bytes(), caption="Share of choices per method and question")
    st.dataframe(table, hide_index=True)


def status_controls(study_id: int, options: StudyOptions) -> None:
    """Status, places against the cap, and the buttons that open, pause or close the study to newcomers."""
    db = shared_db()
    held, cap, status = reports.places(db, study_id)
    st.markdown(f"**Status: {status}.** Places held (finished or active, not excluded): {held}"
                f"{f' of {cap}' if cap else ' (no cap)'}; a place is given back after "
                f"{options.slot_timeout_minutes:g} quiet minutes. Paused or closed: nobody new "
                "starts, everyone already in may finish. Closing is final.")
    for column, action in zip(st.columns(4), STATUS_ACTIONS[status]):
        if column.button(action, key=f"admin_{action.lower()}"):
            reports.set_status(db, study_id, {"Pause": "paused", "Close": "closed", "Open": "open"}[action])
            st.rerun()


def exclusion_rule(options: StudyOptions) -> int | None:
    """The study's rule, or an override typed here; says which one the chart uses. None: the study's."""
    own = options.exclude_after_failed_checks
    override = st.checkbox(f"Override the study's exclusion rule (exclude after {own} failed checks)",
                           key="admin_override")
    if not override:
        st.caption(f"Exclusion rule: the study's own, exclude after {own} failed checks (0 = none).")
        return None
    k = int(st.number_input("Exclude after this many failed checks (0 = none)", min_value=0, value=own,
                            key="admin_max_failed"))
    st.warning(f"Override in use: exclude after {k} failed checks (the study's rule is {own}); "
               f"the analysis command takes `--max-failed-catch {k}` for the same.")
    return k


def render() -> None:
    """The admin page."""
    st.title("Study admin")
    if not authorized():
        st.stop()
    db = shared_db()
    all_studies = reports.studies(db)
    if all_studies.empty:
        st.info("No study in the database yet.")
        return
    name = st.selectbox("Study", list(all_studies["name"]), index=0, key="admin_study")
    row = all_studies.set_index("name").loc[name]
    study_id, options = int(row["id"]), row["options"]
    st.caption(f"Database: {db.path}. Recruitment: {options.recruitment}. Participant link: "
               f"`{participant_link(name, options.recruitment)}`")
    status_controls(study_id, options)
    time = information.estimate(db, study_id)
    texts = information.study_texts(db, study_id)
    st.caption(f"Estimated duration: about {time.minutes} minutes ({time.screens} screens; pace {time.source}). "
               + ("Texts: " + ", ".join(f"{k} sha256 {t.sha256[:12]}" for k, t in sorted(texts.items()))
                  if texts else "Consent: the default text.")
               + f" Withdrawals so far: {reports.withdrawals(db, study_id)}.")

    votes = reports.votes_long(db, name)
    people = reports.participants(db, study_id)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Participants", len(people))
    c2.metric("Finished", int(people["finished_at"].notna().sum()) if not people.empty else 0)
    c3.metric("Excluded (failed checks)", int(people["excluded"].sum()) if not people.empty else 0)
    c4.metric("Votes", len(votes))

    st.subheader("Progress per item")
    st.dataframe(reports.item_progress(db, study_id), hide_index=True)
    st.subheader("Votes per method and question")
    per_method = reports.method_progress(votes)
    if per_method.empty:
        st.write("No votes yet.")
    else:
        st.dataframe(per_method)
    st.subheader("Participants and exclusions")
    st.dataframe(people, hide_index=True)
    st.subheader("Export")
    st.download_button("Download votes (CSV, long format)", reports.to_csv_bytes(votes),
                       file_name=f"votes_{name}.csv", mime="text/csv", key="admin_export")
    st.download_button("Download participants (CSV, for approving on Prolific)",
                       reports.to_csv_bytes(reports.platform_participants(db, study_id)),
                       file_name=f"participants_{name}.csv", mime="text/csv", key="admin_participants")
    st.subheader("Preferences")
    rule = exclusion_rule(options)
    if st.toggle("Compute the preference chart (bootstrap; takes a few seconds)", key="admin_chart"):
        preference_chart(votes, list(row["methods"]), rule)


render()
