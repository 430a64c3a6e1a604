"""The seven expressions in the authors' label order, and every name the datasets use for them."""
import numbers

from ..errors import NumberedExpression, UnknownExpression

# Alphabetical KDEF codes, as the authors' ImageFolder over AFS ANS DIS HAS NES SAS SUS assigns them.
EXPRESSIONS = ("afraid", "angry", "disgusted", "happy", "neutral", "sad", "surprised")
KDEF_CODES = ("AF", "AN", "DI", "HA", "NE", "SA", "SU")
FOLDER_CODES = tuple(c + "S" for c in KDEF_CODES)  # the authors' folder names

_ALIASES = {
    "afraid": ("af", "afs", "fear", "fearful", "afraid", "scared"),
    "angry": ("an", "ans", "anger", "angry"),
    "disgusted": ("di", "dis", "disgust", "disgusted"),
    "happy": ("ha", "has", "happiness", "happy", "joy", "smile"),
    "neutral": ("ne", "nes", "neutral", "calm"),
    "sad": ("sa", "sas", "sadness", "sad"),
    "surprised": ("su", "sus", "surprise", "surprised"),
}
ALIAS_TO_LABEL = {alias: EXPRESSIONS.index(name) for name, aliases in _ALIASES.items() for alias in aliases}

# Categories the datasets carry that US-GAN leaves out: RaFD's contempt and CFEE's compound expressions.
EXCLUDED = {
    "contempt", "contemptuous", "happily_surprised", "happily_disgusted", "sadly_fearful", "sadly_angry",
    "sadly_surprised", "sadly_disgusted", "fearfully_angry", "fearfully_surprised", "fearfully_disgusted",
    "angrily_surprised", "angrily_disgusted", "disgustedly_surprised", "appalled", "hatred", "awed",
}




def _key(name: str) -> str:
    return str(name).strip().lower().replace(" ", "_").replace("-", "_")


def is_excluded(name: str) -> bool:
    return _key(name) in EXCLUDED


def to_label(name: str | int) -> int:
    """Label index of an expression name or code in any dataset's spelling (case-insensitive); an int is the index."""
    if isinstance(name, numbers.Integral) and not isinstance(name, bool):
        if not 0 <= name < len(EXPRESSIONS):
            raise UnknownExpression(f"label index {name} is outside 0-{len(EXPRESSIONS) - 1}")
        return int(name)
    key = _key(name)
    if key.isdigit():
        # CFEE's 01 is neutral, an ImageFolder's 0 is afraid: a number means nothing without its dataset.
        raise NumberedExpression(
            f"'{name}' is a number, not an expression name; write the name ({', '.join(EXPRESSIONS)})")
    if key not in ALIAS_TO_LABEL:
        raise UnknownExpression(
            f"unknown expression '{name}'; use one of {', '.join(EXPRESSIONS)} (or codes {', '.join(KDEF_CODES)})")
    return ALIAS_TO_LABEL[key]


def parse_targets(spec: str) -> list[int]:
    """'all', 'happy', or 'happy,sad' as label indices."""
    if _key(spec) == "all":
        return list(range(len(EXPRESSIONS)))
    return [to_label(s) for s in spec.split(",") if s.strip()]
