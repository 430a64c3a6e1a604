"""Participant entry point: `streamlit run study_app/main.py [-- --demo]`; the admin page is served at /admin."""

from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st

from study_app.participant_page import render
from study_app.settings import SERVER_ERROR

ADMIN_PAGE = Path(__file__).resolve().parent / "pages" / "admin.py"

log = logging.getLogger("study_app")
if not log.handlers:  # this script reruns on every interaction; one handler per process
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.addHandler(handler)

# Streamlit's default shows tracebacks (server paths, SQL) in the page; an error that escapes us shows nothing.
st.set_option("client.showErrorDetails", "none")
st.set_page_config(page_title="Image study", layout="wide", initial_sidebar_state="collapsed")
# No navigation menu: participants never see that an admin page exists; it is reached by its URL.
page = st.navigation([st.Page(render, title="Study", url_path="study", default=True),
                      st.Page(ADMIN_PAGE, title="Admin", url_path="admin")], position="hidden")
try:
    page.run()
except Exception:
    log.exception("page /%s failed for query %s", page.url_path, dict(st.query_params))
    st.error(SERVER_ERROR)
