"""Participant entry point: `streamlit run study_app/main.py [-- --demo]`; the admin page is served at /admin."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import streamlit as st

from study_app.participant_page import render
from study_app.settings import SERVER_ERROR

ADMIN_PAGE = Path(__file__).resolve().parent / "pages" / "admin.py"

# Anything shaped like a Prolific id (24 hex characters on their own), wherever it hides in a message.
_ID_LIKE = re.compile(r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{24}(?![0-9A-Fa-f])")


class IdFreeFormatter(logging.Formatter):
    """Log lines and tracebacks with every Prolific-id-shaped string blanked: PIDs never reach a log."""

    def format(self, record: logging.LogRecord) -> str:
        return _ID_LIKE.sub("<id>", super().format(record))


log = logging.getLogger("study_app")
if not log.handlers:  # this script reruns on every interaction; one handler per process
    handler = logging.StreamHandler()
    handler.setFormatter(IdFreeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.addHandler(handler)
    log.propagate = False  # through our handler only, never a root handler that prints the raw record

# Streamlit's default shows tracebacks (server paths, SQL) in the page; an error that escapes us shows nothing.
st.set_option("client.showErrorDetails", "none")
st.set_page_config(page_title="Image study", layout="wide", initial_sidebar_state="collapsed")
# No navigation menu: participants never see that an admin page exists; it is reached by its URL.
page = st.navigation([st.Page(render, title="Study", url_path="study", default=True),
                      st.Page(ADMIN_PAGE, title="Admin", url_path="admin")], position="hidden")
try:
    page.run()
except Exception:
    # The parameters' names only: their values are participants' ids.
    log.exception("page /%s failed (URL parameters: %s)", page.url_path,
                  ", ".join(sorted(st.query_params)) or "none")
    st.error(SERVER_ERROR)
