"""Try US-GAN on your own photo in the browser: upload, pick an expression and its strength or a morph, download.

    streamlit run usgan/app.py
    USGAN_APP_WEIGHTS=~/usgan-runs/usgan-demo streamlit run usgan/app.py     # another default checkpoint

The model is the shipped demo generator (usgan/weights/demo-G.ckpt) when it exists, else whatever checkpoint
the sidebar names: a run folder, one of our checkpoints, the authors' usgan_87_G.ckpt or StarGAN's *-G.ckpt.
Faces are found, checked and pasted back exactly as `python -m usgan.synthesize` does (usgan/faces.py).
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import streamlit as st
import torch

from usgan.checkpoints import SHIPPED_G, CheckpointError, load_generator
from usgan.cli_common import UsageError
from usgan.data.expressions import EXPRESSIONS
from usgan.faces import edit_picture, find_faces, open_photo, restore_mode, target

PHOTO_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff"]
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def default_checkpoint() -> str:
    """USGAN_APP_WEIGHTS, else the shipped demo weights, else nothing."""
    path = Path(os.environ.get("USGAN_APP_WEIGHTS", SHIPPED_G)).expanduser()
    return str(path) if path.exists() else ""


@st.cache_resource(max_entries=2, show_spinner="Loading the generator ...")
def generator(path: str, mtime: float):
    """The generator and its image size; mtime in the key reloads a checkpoint that was overwritten."""
    G, cfg = load_generator(path)
    return G.to(DEVICE), cfg.model.image_size


@st.cache_resource(max_entries=4, show_spinner="Finding faces ...")
def photo_and_faces(data: bytes, name: str, size: int, crop: str):
    photo = open_photo(io.BytesIO(data), name)
    return photo, find_faces(photo.rgb, size, crop)


def model_from_sidebar():
    """(G, image size) from the checkpoint the sidebar names, or None after saying what is missing."""
    st.sidebar.header("Model")
    path = st.sidebar.text_input("Checkpoint", value=default_checkpoint(),
                                 help="a run folder, engine.pt, a *-G.ckpt or the authors' usgan_87_G.ckpt")
    if not path.strip():
        st.info("The shipped demo weights (usgan/weights/demo-G.ckpt) are missing. Enter the path of a "
                "checkpoint in the sidebar: a run folder, a *-G.ckpt, or the authors' usgan_87_G.ckpt.")
        return None
    p = Path(path.strip()).expanduser()
    try:
        return generator(str(p), p.stat().st_mtime if p.exists() else 0.0)
    except CheckpointError as e:
        st.error(str(e))
        return None


def choose_condition() -> tuple[torch.Tensor, float, str]:
    """The condition vector, intensity and a file-name label from the controls."""
    mode = st.radio("Edit", ["Expression", "Morph"], horizontal=True)
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
    model = model_from_sidebar()
    if model is None:
        return
    G, size = model
    upload = st.file_uploader("Photo with one or more faces", type=PHOTO_TYPES)
    if upload is None:
        st.caption("Upload a photo; every face in it is edited and pasted back, the rest stays untouched.")
        return
    crop = "center" if st.checkbox("The photo already is a tightly cropped face (skip detection)") else "align"
    try:
        photo, faces = photo_and_faces(upload.getvalue(), upload.name, size, crop)
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
    result = restore_mode(edit_picture(G, photo.rgb, faces, c, strength), photo)
    before, after = st.columns(2)
    before.image(restore_mode(photo.rgb, photo), caption="Before", width="stretch", output_format="PNG")
    after.image(result, caption="After", width="stretch", output_format="PNG")
    buf = io.BytesIO()
    result.save(buf, format="PNG")
    st.download_button("Download the result (PNG)", buf.getvalue(), f"{Path(upload.name).stem}_{label}.png",
                       mime="image/png")


main()
