"""Named generator weights: what each was trained on, the crop it expects, and fetching it on request.

    usgan-weights list                 # every known weight: trained on, size, where, present, licence
    usgan-weights get authors          # download, verify by git blob id, then move into the cache
    usgan-synthesize --checkpoint authors --input me.jpg --expression happy --out out/

`demo` ships inside the package. `authors` is the US-GAN authors' released generator: it is downloaded only when
asked, only from their repository at a pinned commit, and kept in ~/.cache/usgan/weights/ (USGAN_WEIGHTS_DIR
overrides); their repository has no licence file, so it is never re-hosted. A download goes to a temporary file
beside the final one and is renamed only after its git blob id (SHA-1 of b"blob <size>\\0" + data, what
GitHub shows for the file) matches, so an interrupted or corrupt download never looks complete.
USGAN_AUTHORS_URL replaces the download address (the tests point it at a local server).
"""
from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..data.align import CropGeometry
from ..errors import WeightsError
from ..data.synthetic import SYNTHETIC_CROP

HERE = Path(__file__).resolve().parent
AUTHORS_REPO = "https://github.com/arbishakram/US-GAN"
AUTHORS_COMMIT = "be3fca227f737542bfe3523fddd1b794c2539641"



@dataclass(frozen=True)
class KnownWeight:
    name: str
    file: str                 # its file name, in the package or the cache
    trained_on: str
    crop: CropGeometry        # where the eyes sit in the crops it was trained on
    licence: str
    url: str | None = None    # None: ships inside the package
    blob_id: str | None = None
    size: int | None = None   # bytes, where known before downloading

    @property
    def packaged(self) -> bool:
        return self.url is None


KNOWN = {w.name: w for w in [
    KnownWeight("demo", "demo-G.ckpt", "the built-in synthetic cartoon faces only, 64 px; not meant for real photos",
                SYNTHETIC_CROP, "ours, under the toolkit's MIT licence; ships inside the package"),
    KnownWeight(
        "authors", "usgan_87_G.ckpt", "KDEF + RaFD + CFEE at 128 px: the US-GAN authors' released generator "
        "(iteration 87,000)",
        # Their in-the-wild test crops, measured with face_recognition: eyes at 35-38 % of the height and
        # 42-44.5 % of the side apart, mouth at 72-75 %, chin at 94-98 %: a tight face crop.
        CropGeometry(eye_y=0.36, eye_gap=0.43),
        f"their repository ({AUTHORS_REPO}) has no licence file: downloaded from it only when you ask, never "
        "re-hosted here",
        url=f"{AUTHORS_REPO}/raw/{AUTHORS_COMMIT}/pre-trained_model/usgan_87_G.ckpt",
        blob_id="64c3cfcfe0e6df583dfb33012a59859aa86194e5"),
]}


def cache_dir() -> Path:
    return Path(os.environ.get("USGAN_WEIGHTS_DIR") or "~/.cache/usgan/weights").expanduser()


def known(name: str) -> KnownWeight:
    if name not in KNOWN:
        raise WeightsError(f"unknown weights '{name}'; known: {', '.join(KNOWN)} (see usgan-weights list)")
    return KNOWN[name]


def weight_path(name: str) -> Path:
    """Where the named weight is, or would be once fetched."""
    w = known(name)
    return (HERE if w.packaged else cache_dir()) / w.file


def is_present(name: str) -> bool:
    return weight_path(name).is_file()


def missing_message(name: str) -> str:
    if known(name).packaged:
        return (f"the shipped {name} weights are missing from {weight_path(name)}; reinstall usgan-toolkit, or pass "
                "--checkpoint authors or a run folder")
    return (f"the {name} weights are not downloaded yet: run `usgan-weights get {name}` "
            f"(it would put them at {weight_path(name)})")


def git_blob_id(path) -> str:
    """SHA-1 of b"blob <size>\\0" + the file's bytes: the id git (and GitHub) gives the file."""
    p = Path(path)
    h = hashlib.sha1(b"blob %d\0" % p.stat().st_size)
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def identify(path) -> KnownWeight | None:
    """The known downloadable weight this file is, by its blob id (a file the user fetched by hand)."""
    p = Path(path)
    if not p.is_file():
        return None
    ids = {w.blob_id: w for w in KNOWN.values() if w.blob_id}
    return ids.get(git_blob_id(p)) if ids else None


@dataclass(frozen=True)
class Resolved:
    path: Path
    known: KnownWeight | None   # None: a path the user typed


def resolve(spec=None) -> Resolved:
    """The one place a --checkpoint value becomes a file: a known name (none: demo), else a path."""
    text = "demo" if spec is None or not str(spec).strip() else str(spec).strip()
    if text in KNOWN:
        if not is_present(text):
            raise WeightsError(missing_message(text))
        return Resolved(weight_path(text), KNOWN[text])
    return Resolved(Path(text).expanduser(), None)


def download_url(name: str) -> str:
    w = known(name)
    return os.environ.get(f"USGAN_{name.upper()}_URL") or w.url


def _check(w: KnownWeight, path: Path, source: str, expected_bytes: int | None = None) -> None:
    """Raise WeightsError unless the file at path is exactly the known weight."""
    got = path.stat().st_size
    if expected_bytes and got != expected_bytes:
        raise WeightsError(f"the download of {w.name} from {source} stopped after {got:,} of {expected_bytes:,} "
                           "bytes; nothing was kept, run the command again")
    actual = git_blob_id(path)
    if actual != w.blob_id:
        raise WeightsError(f"refused {w.name} from {source}: its git blob id is {actual}, expected {w.blob_id}; "
                           "nothing was kept")


def _temp_beside(dest: Path):
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    except OSError as e:
        raise WeightsError(f"cannot write to {dest.parent} ({e.strerror or e}); set USGAN_WEIGHTS_DIR to a "
                           "writable folder") from None
    return os.fdopen(fd, "wb"), Path(tmp)


def _install(w: KnownWeight, fill, source: str) -> Path:
    """Write through fill(file) to a temporary file beside the destination, verify, rename; nothing on failure."""
    dest = weight_path(w.name)
    f, tmp = _temp_beside(dest)
    try:
        with f:
            expected = fill(f)
        _check(w, tmp, source, expected)
        tmp.chmod(0o644)
        os.replace(tmp, dest)     # atomic: the final name only ever holds a verified file
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def fetch(name: str, url: str | None = None, on_progress=None, timeout: float = 60) -> Path:
    """Download a named weight into the cache; on_progress(done_bytes, total_bytes or None) follows it."""
    w = known(name)
    if w.packaged:
        return weight_path(name)
    url = url or download_url(name)

    def fill(f) -> int | None:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                total = int(r.headers.get("Content-Length") or 0) or None
                done = 0
                for chunk in iter(lambda: r.read(1 << 16), b""):
                    f.write(chunk)
                    done += len(chunk)
                    if on_progress:
                        on_progress(done, total or w.size)
                return total
        except urllib.error.HTTPError as e:
            raise WeightsError(f"could not download {name}: HTTP {e.code} {e.reason} from {url}; fetch it by hand "
                               f"from that URL and run `usgan-weights get {name} --file FILE`") from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
            reason = getattr(e, "reason", None) or str(e) or type(e).__name__
            raise WeightsError(f"could not download {name} ({reason}); fetch it by hand from {url} and run "
                               f"`usgan-weights get {name} --file FILE`") from None

    return _install(w, fill, url)


def add_file(name: str, path) -> Path:
    """Verify a file fetched by hand and copy it into the cache under its name."""
    w = known(name)
    src = Path(path).expanduser()
    if w.packaged:
        raise WeightsError(f"{name} ships inside the package; there is nothing to add")
    if not src.is_file():
        raise WeightsError(f"{src} does not exist; download {w.file} from {w.url} first")

    def fill(f) -> None:
        with open(src, "rb") as s:
            shutil.copyfileobj(s, f)

    return _install(w, fill, str(src))
