"""List, fetch and locate named generator weights.

    usgan-weights list              # (or python -m usgan.weights list)
    usgan-weights get authors       # download from the authors' repository, verify, cache
    usgan-weights get authors --file ~/Downloads/usgan_87_G.ckpt     # one fetched by hand: verify and cache
    usgan-weights path authors
"""
from __future__ import annotations

import sys

from ..cli_common import parser, run
from ..errors import WeightsError
from . import KNOWN, add_file, download_url, fetch, is_present, known, missing_message, weight_path


def _size(name: str) -> str:
    w, p = KNOWN[name], weight_path(name)
    n = p.stat().st_size if p.is_file() else w.size
    return f"{n / 2 ** 20:.1f} MB" if n else "size unknown"


def list_weights() -> None:
    for name, w in KNOWN.items():
        state = "present" if is_present(name) else f"missing (usgan-weights get {name})"
        print(f"{name}: {state}, {_size(name)}, {weight_path(name)}")
        print(f"    trained on: {w.trained_on}")
        print(f"    crop: {w.crop}")
        print(f"    licence: {w.licence}")


def get(name: str, file=None) -> None:
    w = known(name)
    if w.packaged:
        if not is_present(name):
            raise WeightsError(missing_message(name))
        print(f"{name} ships inside the package: {weight_path(name)}")
        return
    if file:
        print(f"{name}: verified and cached at {add_file(name, file)}")
        return
    from tqdm import tqdm

    url = download_url(name)
    print(f"downloading {name} from {url}", flush=True)
    # tqdm draws only on a terminal; in logs the two lines around it say what happened.
    with tqdm(unit="B", unit_scale=True, unit_divisor=1024, disable=None, dynamic_ncols=True) as bar:
        def progress(done, total):
            bar.total = total
            bar.update(done - bar.n)
        path = fetch(name, url, progress)
    print(f"{name}: git blob id {w.blob_id} verified; cached at {path}")


def build_parser():
    ap = parser("usgan-weights", __doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="every known weight: what it was trained on, size, where, present, licence")
    g = sub.add_parser("get", help="download a named weight into the cache (verified before it is kept)")
    g.add_argument("name", help=", ".join(KNOWN))
    g.add_argument("--file", help="a copy you downloaded by hand: verify it and copy it into the cache")
    p = sub.add_parser("path", help="where a named weight is")
    p.add_argument("name", help=", ".join(KNOWN))
    return ap


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    if a.command == "list":
        list_weights()
    elif a.command == "get":
        get(a.name, a.file)
    else:
        if not is_present(a.name):
            raise WeightsError(missing_message(a.name))
        print(weight_path(a.name))
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
