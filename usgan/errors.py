"""The errors usgan raises for input that cannot work; each message names the problem and the fix.

Command lines (cli_common.run) print them as one `error:` line with exit code 2; library callers catch them by type.
"""
from __future__ import annotations


class UsageError(ValueError):
    """A value passed in (a flag, a file, a photo) that cannot work."""


class ConfigError(ValueError):
    """A setting that cannot work; the message names the setting and the fix."""


class CheckpointError(ValueError):
    """A checkpoint path that cannot be loaded."""


class WeightsError(ValueError):
    """A named weight that is unknown, missing or fails to download or verify."""


class FERWeightsError(ValueError):
    """A weights path that does not hold the facial-emotion-recognition model."""


class DatasetError(ValueError):
    """A dataset folder or manifest that cannot be read."""


class UnknownExpression(ValueError):
    """An expression name that is neither one of the seven nor a known left-out category."""


class NumberedExpression(UnknownExpression):
    """A number where an expression name belongs: datasets number their categories differently."""


class FaceLibraryMissing(UsageError):
    """dlib, face_recognition_models or face_recognition cannot be imported."""
