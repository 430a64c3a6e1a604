"""The admin secret: where it is configured, the sign-in form, and a brake on guessing."""

from __future__ import annotations

import hmac
import os
import threading
import time
from collections import deque
from collections.abc import Callable

import streamlit as st

SECRET_ENV = "USGAN_STUDY_ADMIN_SECRET"
SECRET_KEY = "admin_secret"
TOO_MANY = "Too many wrong secrets. Try again in a minute."


class Throttle:
    """At most `limit` wrong guesses per `window_s` in this process, whichever session or client sends them."""

    # Process-wide on purpose: a guesser opens a new session per try. The price is that a guesser can also
    # keep the real admin waiting for a minute, which is cheap next to a guessed secret.

    def __init__(self, limit: int = 5, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window_s, self.clock = limit, window_s, clock
        self._failures: deque[float] = deque()
        self._lock = threading.Lock()

    def _recent(self, now: float) -> int:
        while self._failures and now - self._failures[0] > self.window_s:
            self._failures.popleft()
        return len(self._failures)

    def blocked(self) -> bool:
        """True while the recent wrong guesses are at the limit."""
        with self._lock:
            return self._recent(self.clock()) >= self.limit

    def failed(self) -> None:
        """Count one wrong guess."""
        with self._lock:
            self._failures.append(self.clock())


THROTTLE = Throttle()


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
        if THROTTLE.blocked():
            st.error(TOO_MANY)  # not even compared: a guess during the pause tells nothing
            return False
        if hmac.compare_digest(given.encode(), secret.encode()):
            st.session_state["admin_ok"] = True
            st.rerun()
        THROTTLE.failed()
        st.error("Wrong secret.")
    return False
