"""Fixtures: a stimulus set made once, a fresh SQLite file, a built study; Chromium and its pages."""

from __future__ import annotations

from pathlib import Path

import pytest

from study_app.build import build_study
from study_app.db import StudyDB

from .study_helpers import make_stimuli, spec_for

@pytest.fixture(scope="session")
def stimuli(tmp_path_factory) -> Path:
    """A small stimulus set, made once per test session."""
    return make_stimuli(tmp_path_factory.mktemp("stimuli"))

@pytest.fixture
def db(tmp_path) -> StudyDB:
    """A fresh database file."""
    database = StudyDB(tmp_path / "study.sqlite")
    yield database
    database.dispose()

@pytest.fixture
def db_path(monkeypatch, tmp_path):
    """A fresh database file named by USGAN_STUDY_DB for the pages; no demo, no server-wide study, no proxy."""
    path = tmp_path / "pages.sqlite"
    monkeypatch.setenv("USGAN_STUDY_DB", str(path))
    for key in ("USGAN_STUDY_DEMO", "USGAN_STUDY_NAME", "USGAN_STUDY_ADMIN_SECRET", "USGAN_STUDY_BEHIND_PROXY"):
        monkeypatch.delenv(key, raising=False)
    return path

@pytest.fixture
def study_id(db, stimuli, tmp_path) -> int:
    """A built test study: 2 faces x 3 expressions, 3 trials + 1 catch per participant."""
    return build_study(spec_for(stimuli, tmp_path / "study"), db)

@pytest.fixture
def page(browser, server):
    """A fresh browser context (no cookies, no storage) that records every URL it requests."""
    context = browser.new_context()
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    pg.requested = []
    pg.on("request", lambda req: pg.requested.append(req.url))
    pg.dialogs = []
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    yield pg
    context.close()
