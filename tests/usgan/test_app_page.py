"""The photo page: AppTest for the flow and the errors, a real server in Chromium for upload and download."""
import io
import os
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from usgan.checkpoints import load_generator
from usgan.faces import edit_picture, find_faces, target

from .eval_helpers import ASTRONAUT, REPO, tiny_run

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


def test_without_weights_the_page_says_so_and_asks_for_a_checkpoint(page_with, tmp_path):
    at = page_with(tmp_path / "missing-G.ckpt")
    assert not at.exception
    assert "The shipped demo weights (usgan/weights/demo-G.ckpt) are missing" in at.info[0].value
    assert at.text_input[0].value == "" and not at.file_uploader
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
    at.radio[0].set_value("Morph").run()
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


@pytest.fixture
def server(tmp_path):
    """`streamlit run usgan/app.py` on a free port, with no default weights."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "USGAN_APP_WEIGHTS": str(tmp_path / "none-G.ckpt")}
    log = open(tmp_path / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", APP, "--server.port", str(port),
                             "--server.address", "127.0.0.1", "--server.headless", "true",
                             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 60
    while not healthy(base):
        assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "server.log").read_text()[-2000:]
        time.sleep(0.2)
    yield base
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


SETTLED_JS = """() => document.querySelector('[data-testid="stApp"]')?.getAttribute('data-test-script-state')
    === 'notRunning' && !document.querySelector('[data-stale="true"]')"""


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.timeout(300)
def test_page_in_chromium_upload_choose_download(browser, server, tiny_ckpt, tmp_path):
    context = browser.new_context(viewport={"width": 1280, "height": 1700}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(server)
    page.get_by_text("The shipped demo weights (usgan/weights/demo-G.ckpt) are missing").wait_for()
    box = page.get_by_role("textbox", name="Checkpoint")
    box.fill(str(tiny_ckpt))
    box.press("Enter")
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(ASTRONAUT))
    page.get_by_text("face 1").wait_for()
    page.wait_for_function(SETTLED_JS)
    page.get_by_role("combobox", name="Expression").click()
    page.get_by_role("option", name="sad", exact=True).click()
    page.wait_for_function(SETTLED_JS)
    thumb = page.get_by_role("slider", name="Intensity")
    thumb.focus()
    for _ in range(10):                                      # 1.00 -> 0.50 in steps of 0.05
        thumb.press("ArrowLeft")
    page.get_by_text("0.50", exact=True).wait_for()
    page.wait_for_function(SETTLED_JS)
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download the result (PNG)").click()
    got = tmp_path / dl.value.suggested_filename
    dl.value.save_as(got)
    page.screenshot(path=str(tmp_path / "app-screenshot.png"), full_page=True)
    assert page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]').count() == 0
    context.close()
    assert got.name == "astronaut_sad-x0.50.png"
    G, _ = load_generator(tiny_ckpt)
    photo = Image.open(ASTRONAUT).convert("RGB")
    want = edit_picture(G, photo, find_faces(photo, 64), target("sad"), 0.5)
    assert np.array_equal(np.asarray(Image.open(got)), np.asarray(want))
