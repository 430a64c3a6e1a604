"""The photo page: AppTest for the flow and the errors, a real server in Chromium for upload and download."""
import dataclasses
import io
import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from usgan import weights as named
from usgan.checkpoints import load_weights
from usgan.data.synthetic import SYNTHETIC_CROP
from usgan.faces import edit_picture, find_faces, target

from .eval_helpers import ASTRONAUT, REPO, tiny_run
from .weights_helpers import authors_in_cache, serving, weights_dir  # noqa: F401 - a fixture

APP = str(REPO / "usgan" / "app.py")


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("ck"))


@pytest.fixture
def page_with(monkeypatch):
    """AppTest of the page with USGAN_APP_WEIGHTS set to a path (or a missing one)."""
    def start(weights):
        monkeypatch.setenv("USGAN_APP_WEIGHTS", str(weights))
        return AppTest.from_file(APP, default_timeout=120).run()
    return start


def upload(at, name, data):
    at.file_uploader[0].upload(name, data, "image/png" if name.endswith(".png") else "image/jpeg")
    return at.run()


def test_a_missing_checkpoint_path_is_named_and_nothing_is_offered(page_with, tmp_path):
    at = page_with(tmp_path / "missing-G.ckpt")
    assert not at.exception
    assert at.radio(key="weights").value == "path" and at.text_input[0].value == str(tmp_path / "missing-G.ckpt")
    assert "does not exist" in at.error[0].value and not at.file_uploader
    # The page stands alone: loading it never pulls in the study app.
    code = (f"import sys; from streamlit.testing.v1 import AppTest; AppTest.from_file({APP!r}, default_timeout=120).run(); "
            "assert 'study_app' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, check=True,
                   capture_output=True, timeout=120)


def test_upload_choose_and_get_a_result(page_with, tiny_ckpt):
    at = upload(page_with(tiny_ckpt), "astronaut.png", ASTRONAUT.read_bytes())
    assert not at.exception and not at.error
    assert [i.captions for i in at.image] == [["face 1"], ["Before"], ["After"]]   # the patch is no face
    at.selectbox[0].select("sad")
    at.slider[0].set_value(0.5)
    at.run()
    assert not at.exception and at.download_button[0].label == "Download the result (PNG)"
    # Under the result: which weights made it and what they saw; its faces were cut with the run's own crop.
    assert at.caption[-1].value == f"sad-x0.50: Made with {tiny_ckpt}, trained on synthetic at 64 px (iteration 0)."
    assert load_weights(str(tiny_ckpt)).crop == SYNTHETIC_CROP
    at.radio(key="edit").set_value("Morph").run()
    assert [s.label for s in at.selectbox] == ["From", "To"]
    assert [s.label for s in at.slider] == ["Position between them", "Intensity"]
    assert not at.exception and [i.captions for i in at.image][-1] == ["After"]


def test_bad_checkpoint_bad_file_and_no_face_are_explained(page_with, tiny_ckpt, tmp_path):
    at = page_with(tiny_ckpt)
    at.text_input[0].set_value(str(tmp_path / "nope")).run()
    assert "does not exist" in at.error[0].value and not at.file_uploader
    at = upload(page_with(tiny_ckpt), "broken.jpg", b"not a jpeg")
    assert "cannot read image broken.jpg" in at.error[0].value
    wall = io.BytesIO()
    Image.new("RGB", (200, 160), (128, 128, 128)).save(wall, format="PNG")
    at = upload(page_with(tiny_ckpt), "wall.png", wall.getvalue())
    assert "No face found" in at.warning[0].value and not at.download_button
    at.checkbox[0].check().run()          # "already a face crop": the centre square is edited
    assert not at.exception and at.download_button


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(base) -> bool:
    try:
        return urllib.request.urlopen(base + "/_stcore/health", timeout=2).read() == b"ok"
    except OSError:
        return False


@contextmanager
def streamlit_server(tmp_path, **env_vars):
    """`streamlit run usgan/app.py` on a free port with these environment variables; yields its URL."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), **env_vars}
    env.pop("USGAN_APP_WEIGHTS", None) if "USGAN_APP_WEIGHTS" not in env_vars else None
    log = open(tmp_path / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", APP, "--server.port", str(port),
                             "--server.address", "127.0.0.1", "--server.headless", "true",
                             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 60
    while not healthy(base):
        assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "server.log").read_text()[-2000:]
        time.sleep(0.2)
    try:
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


@pytest.fixture
def server(tmp_path):
    """The page with a checkpoint path that does not exist yet."""
    with streamlit_server(tmp_path, USGAN_APP_WEIGHTS=str(tmp_path / "none-G.ckpt")) as base:
        yield base


SETTLED_JS = """() => document.querySelector('[data-testid="stApp"]')?.getAttribute('data-test-script-state')
    === 'notRunning' && !document.querySelector('[data-stale="true"]')"""


def open_page(browser, url):
    """A fresh browser context (downloads on) showing the page."""
    context = browser.new_context(viewport={"width": 1280, "height": 1700}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    return context, page


def upload_and_choose(page, expression: str) -> None:
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(ASTRONAUT))
    page.get_by_text("face 1").wait_for()
    page.wait_for_function(SETTLED_JS)
    page.get_by_role("combobox", name="Expression").click()
    page.get_by_role("option", name=expression, exact=True).click()
    page.wait_for_function(SETTLED_JS)


def download_result(page, tmp_path):
    """Click the download button; the saved file, after checking the page shows no error."""
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download the result (PNG)").click()
    got = tmp_path / dl.value.suggested_filename
    dl.value.save_as(got)
    page.screenshot(path=str(tmp_path / "app-screenshot.png"), full_page=True)
    assert page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]').count() == 0
    return got


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.timeout(300)
def test_page_in_chromium_upload_choose_download(browser, server, tiny_ckpt, tmp_path):
    context, page = open_page(browser, server)
    page.get_by_text("does not exist").wait_for()
    box = page.get_by_role("textbox", name="Checkpoint")
    box.fill(str(tiny_ckpt))
    box.press("Enter")
    upload_and_choose(page, "sad")
    thumb = page.get_by_role("slider", name="Intensity")
    thumb.focus()
    for _ in range(10):                                      # 1.00 -> 0.50 in steps of 0.05
        thumb.press("ArrowLeft")
    page.get_by_text("sad-x0.50: Made with").wait_for()      # the result of exactly this choice is shown
    page.wait_for_function(SETTLED_JS)
    got = download_result(page, tmp_path)
    context.close()
    assert got.name == "astronaut_sad-x0.50.png"
    w = load_weights(str(tiny_ckpt))         # the run's own crop: the synthetic set's
    photo = Image.open(ASTRONAUT).convert("RGB")
    want = edit_picture(w.G, photo, find_faces(photo, 64, geometry=w.crop), target("sad"), 0.5)
    assert np.array_equal(np.asarray(Image.open(got)), np.asarray(want))


def test_authors_missing_a_button_fetches_them_with_progress(weights_dir, monkeypatch, tmp_path):
    """The page's button downloads from the (local stand-in for the) authors' URL, verifies, and uses them."""
    authors_in_cache(tmp_path / "source")
    good = (tmp_path / "source" / "usgan_87_G.ckpt").read_bytes()
    monkeypatch.setenv("USGAN_APP_WEIGHTS", "authors")
    with serving(good[:1000]) as url:                # first a wrong file: refused, the page says so
        monkeypatch.setenv("USGAN_AUTHORS_URL", url)
        at = AppTest.from_file(APP, default_timeout=120).run()
        assert at.radio(key="weights").value == "authors" and not at.file_uploader
        assert "no licence file" in at.warning[0].value and "never re-hosted" in at.warning[0].value
        at.button[0].click().run()
        assert "refused authors" in at.error[0].value and not named.is_present("authors")
    monkeypatch.setitem(named.KNOWN, "authors", dataclasses.replace(
        named.KNOWN["authors"], blob_id=named.git_blob_id(tmp_path / "source" / "usgan_87_G.ckpt")))
    with serving(good) as url:
        monkeypatch.setenv("USGAN_AUTHORS_URL", url)
        at.run()                   # AppTest keeps a clicked button's True until the next run; a browser does not
        at.button[0].click().run()
    assert not at.exception and not at.error and named.is_present("authors")
    assert (weights_dir / "usgan_87_G.ckpt").read_bytes() == good and at.file_uploader
    at = upload(at, "astronaut.png", ASTRONAUT.read_bytes())
    assert not at.exception and "happy-x1.00: Made with the 'authors' weights (usgan_87_G.ckpt)" in at.caption[-1].value


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.timeout(300)
def test_page_in_chromium_choose_authors_edit_download(browser, weights_dir, tmp_path):
    """With an authors-layout file in the cache: choose "authors", edit, download; the weights line names them."""
    authors_in_cache(weights_dir)
    with streamlit_server(tmp_path, USGAN_WEIGHTS_DIR=str(weights_dir)) as base:
        context, page = open_page(browser, base)
        page.get_by_text("The demo weights learned from synthetic cartoon faces only").wait_for()
        page.get_by_text("authors: the paper's, KDEF + RaFD + CFEE").click()
        upload_and_choose(page, "surprised")
        page.get_by_text("surprised-x1.00: Made with the 'authors' weights (usgan_87_G.ckpt), trained on KDEF + RaFD "
                         "+ CFEE").wait_for()
        got = download_result(page, tmp_path)
        assert page.get_by_text("cartoon faces only").count() == 1     # the radio's label only: no demo notice
        context.close()
    assert got.name == "astronaut_surprised-x1.00.png"
    w = load_weights("authors")
    photo = Image.open(ASTRONAUT).convert("RGB")
    want = edit_picture(w.G, photo, find_faces(photo, 128, geometry=w.crop), target("surprised"), 1.0)
    assert np.array_equal(np.asarray(Image.open(got)), np.asarray(want))
