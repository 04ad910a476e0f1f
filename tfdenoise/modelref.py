"""One way to name a model: the resolver every command and the front doors share.

A *model spec* is what a user types after ``--model`` (or as a positional argument):

* nothing (``None``)        -> the shipped default model of the family asked for
                               (:data:`~tfdenoise.pretrained.DEFAULT_VARIANT`, or for keyword
                               spotting :data:`~tfdenoise.pretrained.DEFAULT_KWS_MODEL`);
* a variant name            -> that shipped, trained model (``lstm128``, ``GRU256``), unless a
                               file or folder of that name exists (denoisers only);
* a checkpoint folder       -> ``config.json`` + ``weights.h5`` written by ``tfdenoise train``
                               (or a keyword-spotting checkpoint: ``"family": "kws"`` in its
                               ``config.json``, :attr:`ModelRef.family` ``kws``);
* a run folder              -> its ``best/`` checkpoint (keyword spotting, ``tfdenoise kws train``);
* a ``MODEL.tflite`` file   -> an exported model;
* a Keras model             -> a user's own tf_keras model: ``MODEL.h5`` / ``.hdf5`` / ``.keras``
                               or a SavedModel folder (``saved_model.pb``, no ``config.json``),
                               :attr:`ModelRef.format` ``keras``
                               (``tfdenoise.converters.keras_model.load_keras_model`` loads it).

:func:`resolve` checks the spec cheaply (no TensorFlow) and returns a :class:`ModelRef`;
:func:`tfdenoise.models.load_checkpoint` and ``tfdenoise.converters.interpreter.TFLiteDenoiser``
(keyword spotting: :func:`tfdenoise.kws.models.load_kws_checkpoint` and
``tfdenoise.converters.kws_runner.TFLiteKws``) load what it names.  Random weights are never
a spec: only ``tfdenoise export --variant`` asks for them, explicitly.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from tfdenoise.errors import InputError, ModelError
from tfdenoise.vocab import ModelFamily


#: File suffixes of a Keras model file, and the file that marks a SavedModel folder.
KERAS_SUFFIXES = (".h5", ".hdf5", ".keras")
SAVED_MODEL = "saved_model.pb"


class ModelFormat(StrEnum):
    """What a resolved spec points at."""

    CHECKPOINT = "checkpoint"
    TFLITE = "tflite"
    KERAS = "keras"  # a user's tf_keras model file or SavedModel folder


@dataclass(frozen=True)
class ModelRef:
    """A resolved model spec: where the model is and what it is."""

    path: Path
    format: ModelFormat
    #: the variant when known without loading (checkpoints, shipped models); else None
    variant: str | None = None
    #: True for a model shipped inside the package (tfdenoise/pretrained)
    pretrained: bool = False
    #: what kind of network it holds: a checkpoint says (``"family"`` in its config.json); a
    #: ``.tflite`` is of the family the spec was resolved for
    family: ModelFamily = ModelFamily.DENOISER

    @property
    def is_kws(self) -> bool:
        return self.family is ModelFamily.KWS

    @property
    def is_tflite(self) -> bool:
        return self.format is ModelFormat.TFLITE

    @property
    def is_keras(self) -> bool:
        return self.format is ModelFormat.KERAS

    @property
    def files(self) -> list[Path]:
        """Files this model reads (no output may overwrite them)."""
        return [self.path] if self.is_tflite or (self.is_keras and not self.path.is_dir()) else []

    @property
    def folders(self) -> list[Path]:
        """Folders this model reads (no output may land inside them)."""
        return [] if self.files else [self.path]

    def __str__(self) -> str:
        return str(self.path)


def resolve(spec: str | os.PathLike | ModelRef | None,
            family: ModelFamily = ModelFamily.DENOISER) -> ModelRef:
    """Turn a model spec into a :class:`ModelRef`; raises :class:`ModelError` when it names nothing.

    ``family`` is what the caller wants: ``None`` means that family's shipped default model
    and a ``.tflite`` is taken to be of it.  A denoiser spec may still name a KWS checkpoint
    (its ``config.json`` says so: ``tfdenoise export`` exports both); a KWS spec is a
    checkpoint folder, a run folder (its ``best/``) or a ``.tflite`` (:func:`_resolve_kws`).
    ``tfdenoise.pretrained`` is imported lazily: a trimmed install without shipped weights still
    resolves paths.
    """
    if isinstance(spec, ModelRef):
        return spec
    if family is ModelFamily.KWS:
        return _resolve_kws(spec)
    if spec is None:
        from tfdenoise.pretrained import DEFAULT_VARIANT

        return _pretrained(DEFAULT_VARIANT)
    path = Path(spec)
    if path.suffix.lower() == ".tflite":
        if path.is_dir():
            raise ModelError("is a folder, not a .tflite model file", path)
        if not path.is_file():
            raise ModelError("no such .tflite model file", path)
        return ModelRef(path, ModelFormat.TFLITE)
    if path.suffix.lower() in KERAS_SUFFIXES:
        if not path.is_file():
            raise ModelError(f"no such Keras model file ({path.suffix})", path)
        return ModelRef(path, ModelFormat.KERAS)
    if path.is_dir() and (path / SAVED_MODEL).is_file() and not (path / "config.json").is_file():
        return ModelRef(path, ModelFormat.KERAS)
    if path.is_dir():
        from tfdenoise.models import read_config

        config = read_config(path)  # ModelError if no config
        if isinstance(config, dict) and config.get("family") == ModelFamily.KWS:
            return ModelRef(path, ModelFormat.CHECKPOINT, None, _inside_pretrained(path), ModelFamily.KWS)
        variant = str(config.get("variant", "")).lower() or None
        return ModelRef(path, ModelFormat.CHECKPOINT, variant, _inside_pretrained(path))
    if path.exists():
        raise ModelError("not a checkpoint folder, a .tflite model or a Keras model (.h5, .keras, "
                         "SavedModel folder)", path)
    if _is_variant_name(str(spec)):
        return _pretrained(str(spec))
    raise ModelError("no such checkpoint folder or .tflite model (nor a variant name: "
                     f"{_variant_list()})", path)


def _resolve_kws(spec: str | os.PathLike | None) -> ModelRef:
    """A keyword-spotting spec (one-line :class:`InputError` naming ``--model`` otherwise).

    The checkpoint's ``config.json`` is read when it is loaded
    (:func:`tfdenoise.kws.models.read_kws_config`), which names what is wrong with it."""
    if spec is None:
        from tfdenoise.pretrained import kws_checkpoint

        return ModelRef(kws_checkpoint(), ModelFormat.CHECKPOINT, None, True, ModelFamily.KWS)
    path = Path(spec)
    if path.is_file():
        if path.suffix.lower() != ".tflite":
            raise InputError("--model must be a KWS checkpoint folder or a .tflite file", path)
        return ModelRef(path, ModelFormat.TFLITE, family=ModelFamily.KWS)
    if path.is_dir():
        from tfdenoise.models import CONFIG_FILE

        if (path / "best" / CONFIG_FILE).is_file():  # a run folder (its config.json is the run's)
            path = path / "best"
        return ModelRef(path, ModelFormat.CHECKPOINT, None, _inside_pretrained(path), ModelFamily.KWS)
    raise InputError("--model: no such checkpoint folder or .tflite file", path)


def require_checkpoint(ref: ModelRef, why: str) -> ModelRef:
    """``ref`` unless it is a ``.tflite`` file; ``why`` completes "... needs a Keras checkpoint"."""
    if ref.is_tflite:
        raise InputError(f"{why} needs a Keras checkpoint folder or a variant name, not a .tflite file",
                         ref.path)
    if ref.is_keras:
        raise InputError(f"{why} needs a tfdenoise checkpoint folder or a variant name, not a Keras "
                         "model file (tfdenoise export, enhance, evaluate and validate take those)",
                         ref.path)
    return ref


def _pretrained(variant: str) -> ModelRef:
    from tfdenoise.pretrained import checkpoint

    return ModelRef(checkpoint(variant), ModelFormat.CHECKPOINT, variant.lower(), True)


def _inside_pretrained(path: Path) -> bool:
    from tfdenoise.pretrained import PRETRAINED_DIR

    return path.resolve().parent == PRETRAINED_DIR


def _is_variant_name(text: str) -> bool:
    from tfdenoise.vocab import VariantName

    return text.lower() in {v.value for v in VariantName}


def _variant_list() -> str:
    from tfdenoise.vocab import VariantName

    return ", ".join(v.value for v in VariantName)
