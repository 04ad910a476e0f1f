"""TinyDenoiser (docs/design.md §2): FC+BN+ReLU -> RNN_0(k) -> RNN_1(k) -> FC+BN+ReLU -> FC+Sigmoid.

Each variant is built once as a set of named Keras layers and wrapped in two models that
share those weights:

* ``sequence``: magnitudes ``[batch, frames, 257]`` -> gains ``[batch, frames, 257]``
  (training, offline inference);
* ``step``: one frame ``[batch, 257]`` plus the RNN states -> gains plus new states
  (streaming; it calls the RNN *cells*, so it has no loop and converts to a flat graph).

A third, built on first use by :meth:`TinyDenoiser.sequence_mask`, is the sequence model
with the RNN states in and out (the same cells wrapped in ``RNN`` layers), compiled once: a
file's frames go through it in blocks, each block starting from the states the previous one
ended with.  It is causal, so its gains equal the step model's frame by frame (to float
rounding; tests/test_enhance.py compares them on a real file for LSTM and GRU).

Layer names (``fc_in``, ``bn_in``, ``rnn_0``, ``rnn_1``, ``fc_mid``, ``bn_mid``, ``fc_out``)
are a contract with ``converters/`` recipes and the ``targets/`` metadata reader.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from tfdenoise.errors import InputError, ModelError
from tfdenoise.fileio import atomic_folder
from tfdenoise.stft import N_BINS
from tfdenoise.vocab import VARIANT_SHAPES, VariantName

if TYPE_CHECKING:
    from tfdenoise.modelref import ModelRef

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.h5"


@dataclass(frozen=True)
class Variant:
    """One TinyDenoiser variant and the paper's weight-matrix count for it."""

    name: str
    cell: str  # "lstm" | "gru"
    units: int
    paper_params: int

    @property
    def gates(self) -> int:
        return 4 if self.cell == "lstm" else 3

    @property
    def weight_matrix_params(self) -> int:
        """Kernel + recurrent-kernel elements = MACs per frame (docs/design.md §2)."""
        k, b, g = self.units, N_BINS, self.gates
        rnn = g * k * (b + k) + g * k * (k + k)
        return b * b + rnn + k * b + b * b

    @property
    def rnn_params(self) -> int:
        k, b, g = self.units, N_BINS, self.gates
        return g * k * (b + k) + g * k * (k + k)

    @property
    def state_names(self) -> tuple[str, ...]:
        per = ("h", "c") if self.cell == "lstm" else ("h",)
        return tuple(f"{s}{i}" for i in range(2) for s in per)


#: The paper's weight-matrix element count of each variant (docs/design.md §2).
PAPER_PARAMS = {VariantName.LSTM256: 1_247_490, VariantName.GRU256: 985_090,
                VariantName.LSTM128: 493_186, VariantName.GRU128: 411_138}
VARIANTS: dict[str, Variant] = {
    name.value: Variant(name, cell, units, PAPER_PARAMS[name])
    for name, (cell, units) in VARIANT_SHAPES.items()
}


def get_variant(name: str) -> Variant:
    """Look a variant up by case-insensitive name (``LSTM256`` == ``lstm256``)."""
    try:
        return VARIANTS[name.lower()]
    except KeyError:
        raise InputError(f"unknown variant {name!r}; choose one of "
                         f"{', '.join(v.upper() for v in VARIANTS)}") from None


class TinyDenoiser:
    """The shared layers of one variant and the two models built on them."""

    def __init__(self, variant: Variant | str, seed: int | None = None) -> None:
        from tfdenoise.keras import keras, layers

        self.variant = get_variant(variant) if isinstance(variant, str) else variant
        if seed is not None:
            keras.utils.set_random_seed(seed)
        v = self.variant
        rnn_cls = layers.LSTM if v.cell == "lstm" else layers.GRU
        self.layers = {
            "fc_in": layers.Dense(N_BINS, name="fc_in"),
            "bn_in": layers.BatchNormalization(name="bn_in"),
            "rnn_0": rnn_cls(v.units, return_sequences=True, name="rnn_0"),
            "rnn_1": rnn_cls(v.units, return_sequences=True, name="rnn_1"),
            "fc_mid": layers.Dense(N_BINS, name="fc_mid"),
            "bn_mid": layers.BatchNormalization(name="bn_mid"),
            "fc_out": layers.Dense(N_BINS, activation="sigmoid", name="fc_out"),
        }
        for i in range(2):  # unique cell names: the step model holds both cells directly
            self.layers[f"rnn_{i}"].cell._name = f"rnn_{i}_cell"
        self._offline = None  # compiled sequence model, built on first offline_mask()
        self._blocks = None  # compiled sequence model with states, built on first sequence_mask()
        self.sequence = self._build_sequence(keras, layers)
        self.step = self._build_step(keras, layers)

    # -- graph construction ---------------------------------------------------------------
    def _head(self, x, layers):
        return layers.ReLU(name="relu_in")(self.layers["bn_in"](self.layers["fc_in"](x)))

    def _tail(self, x, layers):
        x = layers.ReLU(name="relu_mid")(self.layers["bn_mid"](self.layers["fc_mid"](x)))
        return self.layers["fc_out"](x)

    def _build_sequence(self, keras, layers):
        inp = keras.Input((None, N_BINS), name="magnitudes")
        x = self._head(inp, layers)
        x = self.layers["rnn_1"](self.layers["rnn_0"](x))
        return keras.Model(inp, self._tail(x, layers), name=f"{self.variant.name}_sequence")

    def _build_step(self, keras, layers):
        # The frame keeps its time axis of 1 so the BatchNormalization layers see the same
        # rank as in the sequence model; the RNN cells work on [batch, features].
        v = self.variant
        frame = keras.Input((1, N_BINS), name="frame")
        states = {n: keras.Input((v.units,), name=n) for n in v.state_names}
        x = layers.Reshape((N_BINS,), name="to_cell")(self._head(frame, layers))
        new_states = []
        for i in range(2):
            cell = self.layers[f"rnn_{i}"].cell
            st = [states[f"h{i}"], states[f"c{i}"]] if v.cell == "lstm" else [states[f"h{i}"]]
            x, st_out = cell(x, st)
            new_states += list(st_out)
        x = layers.Reshape((1, v.units), name="from_cell")(x)
        outputs = [self._tail(x, layers)] + new_states
        return keras.Model([frame, *states.values()], outputs, name=f"{v.name}_step")

    def _build_blocks(self, keras, layers):
        # The sequence model with the RNN states in and out: RNN layers around the same cells
        # (the same weights as rnn_0 / rnn_1) return their final states.
        v = self.variant
        mags = keras.Input((None, N_BINS), name="magnitudes")
        states = {n: keras.Input((v.units,), name=n) for n in v.state_names}
        x = self._head(mags, layers)
        new_states = []
        for i in range(2):
            rnn = layers.RNN(self.layers[f"rnn_{i}"].cell, return_sequences=True,
                             return_state=True, name=f"rnn_{i}_blocks")
            st = [states[f"h{i}"], states[f"c{i}"]] if v.cell == "lstm" else [states[f"h{i}"]]
            x, *st_out = rnn(x, initial_state=st)
            new_states += st_out
        return keras.Model([mags, *states.values()], [self._tail(x, layers), *new_states],
                           name=f"{v.name}_blocks")

    # -- counting ---------------------------------------------------------------------------
    def weight_matrix_params(self) -> int:
        """Count kernel and recurrent-kernel elements in the built model."""
        return int(sum(np.prod(w.shape) for w in self.sequence.weights
                       if w.name.split("/")[-1].split(":")[0] in ("kernel", "recurrent_kernel")))

    def all_params(self) -> int:
        return int(self.sequence.count_params())

    # -- numpy inference ----------------------------------------------------------------------
    def offline_mask(self, magnitudes: np.ndarray) -> np.ndarray:
        """Gains for all frames ``[T, 257]`` at once (sequence model, compiled once)."""
        if self._offline is None:
            from tfdenoise.keras import tf

            spec = tf.TensorSpec((1, None, N_BINS), tf.float32)
            self._offline = tf.function(lambda m: self.sequence(m, training=False),
                                        input_signature=[spec])
        return np.asarray(self._offline(magnitudes[None].astype(np.float32)))[0]

    def sequence_mask(self) -> Callable[[np.ndarray], np.ndarray]:
        """A stateful ``magnitudes[T, 257] -> gains[T, 257]`` through the compiled sequence model.

        Successive calls are successive blocks of one signal: each starts from the RNN states
        the previous call ended with (zero at first).  The graph is traced once per model.
        """
        from tfdenoise.keras import keras, layers, tf

        v = self.variant
        if self._blocks is None:
            model = self._build_blocks(keras, layers)
            specs = [tf.TensorSpec((1, None, N_BINS), tf.float32),
                     *(tf.TensorSpec((1, v.units), tf.float32) for _ in v.state_names)]
            self._blocks = tf.function(lambda m, *s: model([m, *s], training=False),
                                       input_signature=specs)
        run = self._blocks
        state = [tf.zeros((1, v.units), tf.float32) for _ in v.state_names]

        def mask(magnitudes: np.ndarray) -> np.ndarray:
            nonlocal state
            out = run(np.asarray(magnitudes, np.float32).reshape(1, -1, N_BINS), *state)
            state = list(out[1:])
            return out[0].numpy()[0]

        return mask

    def streaming_mask(self) -> Callable[[np.ndarray], np.ndarray]:
        """A stateful function ``magnitudes[257] -> gains[257]`` using the step model."""
        from tfdenoise.keras import tf

        step = tf.function(lambda inputs: self.step(inputs, training=False))
        state = [np.zeros((1, self.variant.units), np.float32) for _ in self.variant.state_names]

        def mask(frame: np.ndarray) -> np.ndarray:
            nonlocal state
            out = step([frame.reshape(1, 1, N_BINS).astype(np.float32), *state])
            state = [np.asarray(s) for s in out[1:]]
            return np.asarray(out[0]).reshape(N_BINS)

        return mask


def describe(variant: Variant) -> dict:
    """Parameter summary of one variant (counts measured on a built model)."""
    model = TinyDenoiser(variant)
    wm = model.weight_matrix_params()
    return {
        "variant": variant.name.upper(),
        "cell": variant.cell.upper(),
        "units": variant.units,
        "weight_matrix_params": wm,
        "macs_per_frame": wm,
        "all_params": model.all_params(),
        "rnn_share": round(variant.rnn_params / wm, 4),
        "paper_params": variant.paper_params,
    }


# -- checkpoints ------------------------------------------------------------------------------

def save_checkpoint(model: TinyDenoiser, path: str | os.PathLike, extra: dict | None = None,
                    extra_writer: Callable[[Path], None] | None = None) -> Path:
    """Write ``config.json`` + ``weights.h5`` into the folder ``path``, atomically.

    ``extra_writer(tmp_folder)`` may add files (e.g. optimizer state) before the rename.
    """
    with atomic_folder(path) as tmp:
        model.sequence.save_weights(str(tmp / WEIGHTS_FILE))
        config = {"variant": model.variant.name, **asdict(model.variant), **(extra or {})}
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2))
        if extra_writer is not None:
            extra_writer(tmp)
    return Path(path)


def read_config(path: str | os.PathLike) -> dict:
    """The ``config.json`` of a checkpoint folder."""
    path = Path(path)
    cfg = path / CONFIG_FILE
    if not cfg.is_file():
        raise ModelError(f"not a tfdenoise checkpoint (no {CONFIG_FILE})", path)
    try:
        return json.loads(cfg.read_text())
    except (ValueError, OSError) as exc:
        raise ModelError(f"corrupt {CONFIG_FILE} ({exc})", path) from exc


def load_denoiser(spec: "str | os.PathLike | ModelRef | None" = None) -> TinyDenoiser:
    """The Keras TinyDenoiser a model spec names (:func:`tfdenoise.modelref.resolve`).

    ``None`` is the shipped default model, a variant name the shipped trained model of that
    variant; a ``.tflite`` spec is an :class:`~tfdenoise.errors.InputError` (no Keras model).
    """
    from tfdenoise.modelref import require_checkpoint, resolve

    return load_checkpoint(require_checkpoint(resolve(spec), "this step").path)


def load_checkpoint(path: str | os.PathLike) -> TinyDenoiser:
    """Rebuild the variant named in ``config.json`` (:func:`checkpoint_variant`) and load its weights."""
    path = Path(path)
    config = read_config(path)
    model = TinyDenoiser(checkpoint_variant(config, path))
    load_weights(model.sequence, path)
    if "qat" in config:  # latent QAT weights -> the grid they trained on (docs/design.md §8)
        from tfdenoise.qat_layers import load_grid

        load_grid(model, model.sequence, config, path / CONFIG_FILE)
    return model


def checkpoint_variant(config: dict, path: str | os.PathLike) -> Variant:
    """The variant a checkpoint's ``config.json`` names, with the RNN ``units`` it records when
    they differ from the variant's (a structurally pruned model, ``tfdenoise prune``)."""
    variant = get_variant(str(config.get("variant", "?")))
    units = config.get("units", variant.units)
    if isinstance(units, bool) or not isinstance(units, int) or units < 1:
        raise ModelError(f"bad units {units!r} in {CONFIG_FILE}", Path(path))
    return variant if units == variant.units else replace(variant, units=units)


def load_weights(keras_model, folder: Path) -> None:
    """Load ``folder/weights.h5`` into ``keras_model``; a missing, corrupt or mismatched file is
    one :class:`ModelError` line naming it (shared by every checkpoint loader)."""
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelError(f"checkpoint has no {WEIGHTS_FILE}", folder)
    try:
        keras_model.load_weights(str(weights))
    except Exception as exc:  # h5py/keras raise many types for bad files
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:120]
        raise ModelError(f"corrupt or mismatched weights ({first})", weights) from exc
