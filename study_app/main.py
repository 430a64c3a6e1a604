"""Participant entry point: `streamlit run study_app/main.py`; the admin page is served at /admin."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from study_app.participant_page import render

ADMIN_PAGE = Path(__file__).resolve().parent / "pages" / "admin.py"

st.set_page_config(page_title="Image study", layout="wide", initial_sidebar_state="collapsed")
# No navigation menu: participants never see that an admin page exists; it is reached by its URL.
page = st.navigation([st.Page(render, title="Study", url_path="study", default=True),
                      st.Page(ADMIN_PAGE, title="Admin", url_path="admin")], position="hidden")
page.run()
