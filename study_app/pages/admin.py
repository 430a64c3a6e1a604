"""Admin page (/admin), behind a secret: progress per item and method, participants and exclusions, export, chart."""

from __future__ import annotations

import hmac
import os
import tempfile
from pathlib import Path

import streamlit as st

from study_app import reports
from study_app.db import StudyDB, open_db
from study_app.demo import active_study_id

SECRET_ENV = "USGAN_STUDY_ADMIN_SECRET"
SECRET_KEY = "admin_secret"


def configured_secret() -> str | None:
    """The admin secret from the environment, else from Streamlit secrets; None if neither is set."""
    if os.environ.get(SECRET_ENV):
        return os.environ[SECRET_ENV]
    try:
        value = st.secrets.get(SECRET_KEY)
    except Exception:  # no secrets.toml at all: Streamlit raises rather than returning None
        return None
    return str(value) if value else None


def authorized() -> bool:
    """Ask for the secret once per session; refuse everything until it matches."""
    secret = configured_secret()
    if not secret:
        st.error(f"The admin page is disabled: set the environment variable {SECRET_ENV} "
                 f"or `{SECRET_KEY}` in .streamlit/secrets.toml, then restart the server.")
        return False
    if st.session_state.get("admin_ok"):
        return True
    given = st.text_input("Admin secret", type="password", key="admin_secret_input")
    if st.button("Sign in", key="admin_sign_in"):
        if hmac.compare_digest(given.encode(), secret.encode()):
            st.session_state["admin_ok"] = True
            st.rerun()
        st.error("Wrong secret.")
    return False


def shared_db() -> StudyDB:
    """The StudyDB of the configured path; open_db keeps one per file for the whole process (thread-safe).

    Not st.cache_resource: that cache ignores USGAN_STUDY_DB, so a changed path would keep the old file.
    """
    return open_db()


def preference_chart(votes, methods: list[str]) -> None:  # noqa: ANN001
    """The analysis scripts' preference table and bar chart; a clear note if they are unavailable."""
    try:
        from analysis.preferences import plot_preferences, preference_table
    except ImportError as err:
        st.info(f"The preference chart needs the `analysis` package (analysis/preferences.py): {err}")
        return
    try:
        # The study's methods, so a method nobody chose still gets its (zero) bar.
        table = preference_table(votes, methods)
    except Exception as err:  # noqa: BLE001  (e.g. no votes left after exclusions: show why, keep the page)
        st.info(f"No preference chart yet: {err}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        written = plot_preferences(table, Path(tmp) / "preferences")
        png = next((p for p in map(Path, written) if p.suffix == ".png"), None)
        if png is not None:
            st.image(png.read_bytes(), caption="Share of choices per method and question")
    st.dataframe(table, hide_index=True)


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
    active = active_study_id(db)
    names = list(all_studies["name"])
    ids = dict(zip(all_studies["name"], all_studies["id"]))
    methods_of = dict(zip(all_studies["name"], all_studies["methods"]))
    default = next((i for i, n in enumerate(names) if ids[n] == active), 0)
    name = st.selectbox("Study", names, index=default, key="admin_study")
    study_id = int(ids[name])
    st.caption(f"Database: {db.path}. Participants take the newest study unless USGAN_STUDY_NAME is set.")

    votes = reports.votes_long(db, name)
    people = reports.participants(db, study_id)
    finished = int(people["finished_at"].notna().sum()) if not people.empty else 0
    excluded = int(people["excluded"].sum()) if not people.empty else 0
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Participants", len(people))
    c2.metric("Finished", finished)
    c3.metric("Excluded (failed checks)", excluded)
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
    st.subheader("Preferences")
    if st.toggle("Compute the preference chart (bootstrap; takes a few seconds)", key="admin_chart"):
        preference_chart(votes, methods_of[name])


render()
