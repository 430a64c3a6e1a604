"""Helpers for the browser tests: a real `streamlit run` server on a free port and Playwright waits."""

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from study_app.settings import REPO_ROOT



def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`streamlit run study_app/main.py` on a free localhost port over the database `db`; `env` adds settings."""

    def __init__(self, root: Path, db: Path, **env: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.db = db
        self.env = {key: value for key, value in os.environ.items() if not key.startswith("USGAN_STUDY_")}
        self.env.update(USGAN_STUDY_DB=str(db), **env)
        self.log = open(root / "server.log", "ab")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "study_app/main.py", "--server.port", str(self.port),
             "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            cwd=REPO_ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "streamlit exited; see server.log"
            try:
                if urllib.request.urlopen(self.base + "/_stcore/health", timeout=2).read() == b"ok":
                    return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError("streamlit did not come up")

    def sigkill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        self.log.close()


def rows(server, sql, *args):
    con = sqlite3.connect(server.db, timeout=30)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


SETTLED_JS = """() => document.querySelector('[data-testid="stApp"]')?.getAttribute('data-test-script-state')
    === 'notRunning' && !document.querySelector('[data-stale="true"]')"""


def settle(page) -> None:
    """Wait until the script run is over and no element of the previous run is still on screen."""
    page.wait_for_function(SETTLED_JS)


def wait_screen(page, text: str) -> None:
    """Wait for a screen by its text, then for the run that drew it to finish."""
    page.get_by_text(text).first.wait_for()
    settle(page)


def image_srcs(page) -> list[str]:
    """Input first, then candidates in screen order."""
    settle(page)
    imgs = page.locator('[data-testid="stImage"] img, [data-testid="stImageContainer"] img')
    imgs.first.wait_for()
    return [i.get_attribute("src") for i in imgs.all()]


def fill(page, choice: dict[int, int]) -> None:
    """Pick `Image k+1` in radio group q for each q -> k."""
    radios = page.locator('[data-testid="stRadio"]')
    radios.first.wait_for()
    for q, pos in choice.items():
        radios.nth(q).get_by_text(f"Image {pos + 1}", exact=True).click()


def answer_screen(page, number: int, screens: int, plain: dict[int, int], catch_right: bool = True) -> int | None:
    """Answer screen `number`; a catch screen gets the input's copy (or, failing, the next image). The catch pick."""
    wait_screen(page, f"Screen {number} of {screens}")
    srcs = image_srcs(page)
    pick = None
    if page.locator('[data-testid="stRadio"]').count() == 1:
        pick = srcs[1:].index(srcs[0])  # the unaltered copy has the input's bytes, hence its URL
        pick = pick if catch_right else (pick + 1) % (len(srcs) - 1)
        fill(page, {0: pick})
    else:
        fill(page, plain)
    page.get_by_role("button", name="Submit and continue").click()
    wait_screen(page, f"Screen {number + 1} of {screens}" if number < screens else "Thank you!")
    return pick
