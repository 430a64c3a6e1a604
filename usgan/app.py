"""Try US-GAN on your own photo in the browser: upload, pick an expression and its strength or a morph, download.

    streamlit run usgan/app.py
    USGAN_APP_WEIGHTS=authors streamlit run usgan/app.py                     # start with another choice
    USGAN_APP_WEIGHTS=~/usgan-runs/usgan-demo streamlit run usgan/app.py     # or a checkpoint path

The sidebar chooses the weights: the shipped demo (synthetic faces only), the authors' released generator (a
button downloads it from their repository when it is not in the cache yet, see usgan/weights/), or a checkpoint
path. Faces are cropped with each model's own crop geometry, checked and pasted back exactly as
`python -m usgan.synthesize` does (usgan/faces.py); under every result a line names the weights that made it.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import streamlit as st
import torch

from usgan import weights as named
from usgan.checkpoints import checkpoint_file, load_weights
from usgan.errors import CheckpointError, UsageError
from usgan.data.align import CropGeometry
from usgan.data.expressions import EXPRESSIONS
from usgan.faces import edit_picture, find_faces, open_photo, restore_mode, target

PHOTO_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff"]
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
CHOICES = {"demo": "demo: synthetic cartoon faces only", "authors": "authors: the paper's, KDEF + RaFD + CFEE",
           "path": "a checkpoint path"}


@st.cache_resource(max_entries=2, show_spinner="Loading the generator ...")
def weights_on_device(spec: str, mtime: float):
    """The loaded weights on the page's device; mtime in the key reloads a file that was replaced."""
    w = load_weights(spec)
    w.G = w.G.to(DEVICE)
    return w


@st.cache_resource(max_entries=4, show_spinner="Finding faces ...")
def photo_and_faces(data: bytes, name: str, size: int, crop: str, geometry: CropGeometry):
    photo = open_photo(io.BytesIO(data), name)
    return photo, find_faces(photo.rgb, size, crop, geometry=geometry)


def default_choice() -> tuple[str, str]:
    """(choice, path) from USGAN_APP_WEIGHTS: a known name, or a path; unset: demo."""
    spec = os.environ.get("USGAN_APP_WEIGHTS", "").strip()
    return (spec, "") if spec in named.KNOWN or not spec else ("path", spec)


def fetch_button(name: str) -> None:
    """Say the named weight is missing, and download it with a progress bar when asked."""
    w = named.known(name)
    st.warning(f"The {name} weights are not on this computer yet. {w.licence[0].upper() + w.licence[1:]}. "
               f"They will be saved to {named.weight_path(name)}.")
    if st.button(f"Download the {name} weights", help=f"from {named.download_url(name)}"):
        bar = st.progress(0.0, text=f"Downloading the {name} weights ...")

        def show(done, total):
            bar.progress(min(done / total, 1.0) if total else 0.0, text=f"Downloading: {done / 2 ** 20:.1f} MB")
        try:
            named.fetch(name, on_progress=show)
        except named.WeightsError as e:
            st.error(str(e))
            return
        st.rerun()


def model_from_sidebar():
    """The weights the sidebar chooses, loaded, or None after saying what is missing."""
    st.sidebar.header("Model")
    first, first_path = default_choice()
    keys = list(CHOICES)
    choice = st.sidebar.radio("Weights", keys, index=keys.index(first) if first in keys else 0,
                              format_func=CHOICES.get, key="weights")
    if choice == "path":
        spec = st.sidebar.text_input("Checkpoint", value=first_path,
                                     help="a run folder, engine.pt, a *-G.ckpt or a usgan_87_G.ckpt you downloaded")
        if not spec.strip():
            st.info("Enter the path of a checkpoint in the sidebar: a run folder, engine.pt or a *-G.ckpt.")
            return None
        spec = str(Path(spec.strip()).expanduser())
    else:
        spec = choice
        if not named.is_present(choice):
            if named.known(choice).packaged:
                st.error(named.missing_message(choice))
            else:
                fetch_button(choice)
            return None
    try:
        path = named.resolve(spec).path
        w = weights_on_device(spec, checkpoint_file(path).stat().st_mtime)
    except (CheckpointError, named.WeightsError) as e:
        st.error(str(e))
        return None
    if choice == "demo":
        st.info("The demo weights learned from synthetic cartoon faces only; on a real photo they draw cartoon "
                "strokes. Choose **authors** in the sidebar for the paper's generator.")
    return w


def choose_condition() -> tuple[torch.Tensor, float, str]:
    """The condition vector, intensity and a file-name label from the controls."""
    mode = st.radio("Edit", ["Expression", "Morph"], horizontal=True, key="edit")
    if mode == "Expression":
        name = st.selectbox("Expression", EXPRESSIONS, index=EXPRESSIONS.index("happy"))
        c, label = target(name), name
    else:
        left, right = st.columns(2)
        a = left.selectbox("From", EXPRESSIONS, index=EXPRESSIONS.index("happy"))
        b = right.selectbox("To", EXPRESSIONS, index=EXPRESSIONS.index("surprised"))
        t = st.slider("Position between them", 0.0, 1.0, 0.5, 0.05)
        c, label = target(a, b, t), f"{a}-{b}-{t:.2f}"
    strength = st.slider("Intensity", 0.0, 2.0, 1.0, 0.05,
                         help="0 keeps the face as it is, 1 is the full expression, above 1 exaggerates")
    return c, strength, f"{label}-x{strength:.2f}"


def main() -> None:
    st.set_page_config(page_title="US-GAN: change the expression", layout="wide")
    st.title("Change the expression on a photo")
    w = model_from_sidebar()
    if w is None:
        return
    upload = st.file_uploader("Photo with one or more faces", type=PHOTO_TYPES)
    if upload is None:
        st.caption("Upload a photo; every face in it is edited and pasted back, the rest stays untouched.")
        return
    crop = "center" if st.checkbox("The photo already is a tightly cropped face (skip detection)") else "align"
    try:
        photo, faces = photo_and_faces(upload.getvalue(), upload.name, w.size, crop, w.crop)
    except UsageError as e:
        st.error(str(e))
        return
    if not faces:
        st.warning("No face found in this photo. Faces must be upright and at least ~40 px between the eyes; "
                   "for a photo that is already a face crop, tick the box above.")
        return
    st.image([f.crop for f in faces], caption=[f"face {i + 1}" for i in range(len(faces))], width=96,
             output_format="PNG")
    c, strength, label = choose_condition()
    result = restore_mode(edit_picture(w.G, photo.rgb, faces, c, strength), photo)
    before, after = st.columns(2)
    before.image(restore_mode(photo.rgb, photo), caption="Before", width="stretch", output_format="PNG")
    after.image(result, caption="After", width="stretch", output_format="PNG")
    buf = io.BytesIO()
    result.save(buf, format="PNG")
    st.download_button("Download the result (PNG)", buf.getvalue(), f"{Path(upload.name).stem}_{label}.png",
                       mime="image/png")
    st.caption(f"{label}: {w.line()}")


main()
