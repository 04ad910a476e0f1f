"""Score a keyword-spotting model named by a spec: ``tfdenoise kws evaluate`` without the CLI.

A spec is what ``--model`` takes (:func:`tfdenoise.modelref.resolve` with the family
``kws``): nothing (the shipped KWS model, :data:`tfdenoise.pretrained.DEFAULT_KWS_MODEL`), a
KWS checkpoint folder, a run folder (its ``best/``) or a ``.tflite``.  :func:`load_model`
loads it -- a checkpoint as the Keras :class:`~tfdenoise.kws.models.KwsModel`, a ``.tflite``
through the one LiteRT runner of KWS files, :class:`~tfdenoise.converters.kws_runner.TFLiteKws`
-- and :func:`evaluate_kws` scores it with :func:`tfdenoise.kws.evaluate.evaluate_model`.
This is the app layer: the speech layer (:mod:`tfdenoise.kws`) never imports the converters.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence, TextIO

from tfdenoise.kws.data import Clip, Task, task_for
from tfdenoise.kws.evaluate import EvalRequest, evaluate_model
from tfdenoise.kws.models import KwsClassifier
from tfdenoise.modelref import ModelRef, resolve
from tfdenoise.vocab import ModelFamily

def resolve_model(spec: str | os.PathLike | ModelRef | None) -> Path:
    """The checkpoint folder or ``.tflite`` a KWS ``--model`` names (one-line errors)."""
    return resolve(spec, ModelFamily.KWS).path


def load_model(spec: str | os.PathLike | ModelRef | None) -> tuple[KwsClassifier, Task, dict]:
    """``(model, task, info)`` of a KWS spec: the model, its :class:`Task` and what is known of
    its training (``format``; for a checkpoint also ``split``, ``epoch`` and ``training``)."""
    ref = resolve(spec, ModelFamily.KWS)
    if ref.is_tflite:
        from tfdenoise.converters.kws_runner import TFLiteKws

        model = TFLiteKws(ref.path)
        return model, task_for(model.labels), {"format": ref.format.value}
    from tfdenoise.kws.models import load_kws_checkpoint, read_kws_config
    from tfdenoise.kws.train_config import DATASET_SPLIT

    config = read_kws_config(ref.path)
    model = load_kws_checkpoint(ref.path)
    return model, task_for(config["labels"], config.get("keywords")), {
        "format": ref.format.value, "split": config.get("split", DATASET_SPLIT),
        "epoch": config.get("epoch"), "training": config.get("training")}


def evaluate_kws(spec: str | os.PathLike | ModelRef | None, request: EvalRequest,
                 clips: Sequence[Clip] | None = None, plot: str | os.PathLike | None = None,
                 progress: TextIO | None = None) -> dict:
    """Accuracy, confusion matrix and DET of the KWS model ``spec`` names
    (:func:`tfdenoise.kws.evaluate.evaluate_model`; ``request`` is checked first)."""
    request.check()
    ref = resolve(spec, ModelFamily.KWS)
    model, task, info = load_model(ref)
    return evaluate_model(model, task, request, source=str(ref.path), model_format=info["format"],
                          trained_split=info.get("split"), clips=clips, plot=plot,
                          progress=progress)
