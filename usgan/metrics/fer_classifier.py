"""A pretrained FER2013 expression classifier for real faces, loaded from the MIT `facial-emotion-recognition` sdist.

    pip download --no-deps facial-emotion-recognition -d weights/     # 27 MB sdist, holds model/model.pkl
    net, info = load_fer("weights/facial_emotion_recognition-0.3.4.tar.gz")   # or .../model/model.pkl, or its folder
    labels = fer_predict(net, faces)      # faces (N,3,H,W) in [-1, 1], aligned crops; labels in our EXPRESSIONS order

Only the weights are used: the network below is our own definition with the same parameter names, so neither
that package nor its dependencies (opencv, facenet-pytorch, torchvision) are needed. The network takes 48x48
grayscale faces normalised to [-1, 1] and ends in a sigmoid over FER2013's seven classes.
The sdist records `accuracy` = 0.957 with its weights; its split is undocumented (FER2013 test accuracies
of this size of network are near 0.65-0.70, so it is most likely the training accuracy). `evaluate` therefore
states the classifier's accuracy measured on the real input faces of the run instead.
"""
from __future__ import annotations

import io
import tarfile
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data.expressions import to_label
from ..errors import FERWeightsError

# FER2013's class order, as the package's emotions dict lists it.
FER_CLASSES = ("angry", "disgusted", "afraid", "happy", "sad", "surprised", "neutral")
FER_TO_OURS = torch.tensor([to_label(n) for n in FER_CLASSES])
# The package crops the tight MTCNN box; our aligned crops have margin, so the inner part is taken.
FACE_FRACTION = 0.8



def _block(cin, cout, stride):
    return nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3, stride, 0), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class FERNet(nn.Module):
    """Four reflect-padded conv blocks (48 -> 6 px), two linear layers, sigmoid; parameter names match the sdist."""

    def __init__(self, width=32, classes=7):
        super().__init__()
        self.conv_1 = _block(1, width, 1)
        self.conv_2 = _block(width, 2 * width, 2)
        self.conv_3 = _block(2 * width, 4 * width, 2)
        self.conv_4 = _block(4 * width, 8 * width, 2)
        self.linear = nn.Sequential(nn.Linear(8 * width * 6 * 6, 256), nn.ReLU(inplace=True),
                                    nn.Linear(256, classes), nn.Sigmoid())

    def forward(self, x):
        x = self.conv_4(self.conv_3(self.conv_2(self.conv_1(x))))
        return self.linear(x.flatten(1))


def _read_blob(path: Path) -> dict:
    """The pickled dict {'network': state_dict, 'accuracy': ...} from model.pkl, its folder, or the sdist."""
    if path.is_dir():
        found = sorted(path.rglob("model.pkl"))
        if not found:
            raise FERWeightsError(f"no model.pkl under {path}; pass the facial-emotion-recognition sdist or its model.pkl")
        path = found[0]
    if not path.is_file():
        raise FERWeightsError(f"FER weights {path} do not exist; get them with "
                              "`pip download --no-deps facial-emotion-recognition -d DIR`")
    if tarfile.is_tarfile(path):
        with tarfile.open(path) as tar:
            member = next((m for m in tar.getmembers() if m.name.endswith("model/model.pkl")), None)
            if member is None:
                raise FERWeightsError(f"{path} holds no model/model.pkl; is it the facial-emotion-recognition sdist?")
            data = io.BytesIO(tar.extractfile(member).read())
    else:
        data = io.BytesIO(path.read_bytes())
    try:
        # weights_only: the file is third-party, so nothing in it may execute.
        blob = torch.load(data, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for a bad file
        raise FERWeightsError(f"cannot read FER weights from {path} ({type(e).__name__})") from None
    if not isinstance(blob, dict) or "network" not in blob:
        raise FERWeightsError(f"{path} is not the facial-emotion-recognition model (no 'network' entry)")
    return blob


def load_fer(path) -> tuple[FERNet, dict]:
    """The pretrained network and what the file says about itself (epochs, recorded accuracy)."""
    blob = _read_blob(Path(path))
    net = FERNet()
    try:
        net.load_state_dict(blob["network"], strict=True)
    except RuntimeError as e:
        raise FERWeightsError(f"{path} does not match the FER network ({str(e).splitlines()[0]})") from None
    info = {"source": str(path), "recorded_accuracy": blob.get("accuracy"), "epochs": blob.get("epochs"),
            "classes": list(FER_CLASSES)}
    return net.eval(), info


def preprocess(faces: torch.Tensor, face_fraction: float = FACE_FRACTION) -> torch.Tensor:
    """Aligned RGB crops in [-1, 1] to the network's input: inner square, grayscale, 48x48, in [-1, 1]."""
    faces = faces.float().clamp(-1, 1)
    s = faces.shape[-1]
    m = round(s * (1 - face_fraction) / 2)
    inner = faces[..., m:s - m, m:s - m] if m > 0 else faces
    # ITU-R 601 luma, what PIL/OpenCV grayscale conversion uses.
    gray = (0.299 * inner[:, 0] + 0.587 * inner[:, 1] + 0.114 * inner[:, 2]).unsqueeze(1)
    return F.interpolate(gray, size=(48, 48), mode="bilinear", align_corners=False, antialias=True)


@torch.no_grad()
def fer_predict(net: FERNet, faces: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Expression labels (our order) of aligned face crops in [-1, 1]."""
    preds = [net(preprocess(faces[s:s + batch_size])).argmax(1) for s in range(0, len(faces), batch_size)]
    return FER_TO_OURS[torch.cat(preds)]
