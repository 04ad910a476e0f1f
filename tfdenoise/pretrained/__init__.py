"""Pretrained TinyDenoiser checkpoints shipped inside the package.

Each variant lives in ``tfdenoise/pretrained/<variant>/`` as a regular checkpoint folder
(``config.json`` + ``weights.h5``, see :func:`tfdenoise.models.save_checkpoint`).
"""
from __future__ import annotations

from pathlib import Path

from tfdenoise.errors import ModelError

PRETRAINED_DIR = Path(__file__).resolve().parent
#: The variant used when no ``--model`` is given: the best PESQ of the shipped models for a
#: modeled GAP9 cost close to the cheapest (see README, "Pretrained models").
DEFAULT_VARIANT = "lstm128"


def checkpoint(variant: str) -> Path:
    """The checkpoint folder of a shipped ``variant`` (``GRU128`` == ``gru128``).

    Raises :class:`ModelError` when the variant is unknown or its weights are not shipped.
    """
    from tfdenoise.models import CONFIG_FILE, WEIGHTS_FILE, VARIANTS

    name = variant.lower()
    if name not in VARIANTS:
        raise ModelError(f"unknown variant {variant!r}; choose one of "
                         f"{', '.join(v.upper() for v in VARIANTS)}")
    path = PRETRAINED_DIR / name
    missing = [f for f in (CONFIG_FILE, WEIGHTS_FILE) if not (path / f).is_file()]
    if missing:
        raise ModelError(f"pretrained {name.upper()} weights are not shipped (missing "
                         f"{', '.join(missing)}); pass --model CHECKPOINT|MODEL.tflite", path)
    return path


def default_checkpoint() -> Path:
    """The checkpoint folder of :data:`DEFAULT_VARIANT`."""
    return checkpoint(DEFAULT_VARIANT)


#: Shipped ``.tflite`` exports of each model, named by ``tools/ship_model.py`` after the rows
#: of the quantization table of docs/design.md §4; the plain precision names mean the ``max`` calibration.
#: ``int8-asym`` (std3, asymmetric ranges) joined the table after the current models shipped:
#: only a model shipped since has it (``tfdenoise export --recipe int8_asym`` makes it for any).
TFLITE_FILES = {"fp32": "fp32", "fp16": "fp16", "int8": "int8_max", "int8-std3": "int8_std3",
                "int8-asym": "int8_std3_asymmetric", "mixed": "mixed_max", "mixed-std3": "mixed_std3"}


def tflite(variant: str, precision: str = "mixed") -> Path:
    """The shipped ``.tflite`` of ``variant`` at ``precision`` (see :data:`TFLITE_FILES`)."""
    folder = checkpoint(variant)
    if precision not in TFLITE_FILES:
        raise ModelError(f"unknown precision {precision!r}; choose one of {', '.join(TFLITE_FILES)}")
    path = folder / "tflite" / f"{variant.lower()}_{TFLITE_FILES[precision]}.tflite"
    if not path.is_file():
        how = f"tfdenoise export --pretrained {variant.lower()} --recipe int8_asym" \
            if precision == "int8-asym" else "tfdenoise export"
        raise ModelError(f"no shipped {precision} export of {variant.upper()}; "
                         f"create one with `{how}`", path)
    return path


def default_tflite(precision: str = "mixed") -> Path:
    """The shipped ``.tflite`` of :data:`DEFAULT_VARIANT` at ``precision``."""
    return tflite(DEFAULT_VARIANT, precision)


#: The shipped keyword-spotting model (``tfdenoise kws evaluate`` without ``--model``): a KWS
#: checkpoint folder ``tfdenoise/pretrained/<name>/`` with its MODEL_CARD.md and card.json.
DEFAULT_KWS_MODEL = "kws_dnn"


def kws_checkpoint(name: str = DEFAULT_KWS_MODEL) -> Path:
    """The folder of a shipped KWS checkpoint (default :data:`DEFAULT_KWS_MODEL`)."""
    from tfdenoise.models import CONFIG_FILE, WEIGHTS_FILE

    path = PRETRAINED_DIR / name
    missing = [f for f in (CONFIG_FILE, WEIGHTS_FILE) if not (path / f).is_file()]
    if missing:
        raise ModelError(f"the KWS model {name} is not shipped (missing {', '.join(missing)}); "
                         "pass --model CHECKPOINT|MODEL.tflite", path)
    return path


def kws_tflite(name: str = DEFAULT_KWS_MODEL, precision: str = "int8") -> Path:
    """The shipped ``.tflite`` of a KWS model (``fp32`` or ``int8``); one-line ModelError if absent."""
    path = kws_checkpoint(name) / "tflite" / f"{name}_{precision}.tflite"
    if not path.is_file():
        raise ModelError(f"no shipped {precision} export of {name}; create one with "
                         "`tfdenoise export`", path)
    return path
