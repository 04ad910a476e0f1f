"""The ``tfdenoise`` metadata entry of exported ``.tflite`` files (a contract with targets/).

A UTF-8 JSON object stored as the flatbuffer metadata named ``tfdenoise``::

    {"format": 1, "variant": "gru128", "precision": "mixed", "random_weights": false,
     "calibration": {"method": "max", "clips": ["p286_035", ...]} | null,
     "layers": [{"name": "rnn_0", "kind": "gru", "precision": "int8", "units": 128,
                 "ops": [op indices in subgraph 0], "param_bytes": 98304,
                 "weight_bits": 8, "weight_storage": "int8"}, ...],
     "conversions": [{"op": 12, "kind": "quantize", "from": "float32", "to": "int8"}, ...],
     "inputs": [{"name": "frame", "shape": [1, 1, 257], "dtype": "float32",
                 "scale": 0.0, "zero_point": 0}, ...],
     "outputs": [...], "param_bytes": 578000}

``precision`` of a layer is read from the file itself: ``int8`` when its ops compute in
INT8, ``fp16`` when its weights are stored as float16, ``fp32`` otherwise.
``weight_storage`` is how its weight matrices are stored (``int4``: packed, two per byte;
``int8``, ``float16``, ``float32``) and ``weight_bits`` the width they hold: the trained width
of a QAT layer (docs/design.md §8: e.g. 5-bit levels in an INT8 container), else the stored
width.  A file exported from a QAT checkpoint also carries ``"qat": {"stage": 1|2, ...}``.

Keyword-spotting files (:mod:`tfdenoise.converters.kws`) carry ``"family": "kws"`` and no
``variant`` (:func:`build_kws_metadata`)::

    {"format": 1, "family": "kws", "model": "cnn", "precision": "int8", "random_weights": false,
     "labels": ["0", ..., "9"], "features": {FeatureConfig fields}, "hop_ms": 32.0,
     "calibration": {"method": "minmax", "windows": 200, "source": "..."} | null,
     "layers": [{"name": "conv_0", "kind": "conv", "precision": "int8", "ops": [0, 1],
                 "param_bytes": 45012}, ...],
     "inputs": [...], "outputs": [...], "param_bytes": 121000}

A user's Keras model (:func:`build_keras_metadata`) carries ``"keras": {"model", "source",
"states"}``, its own layers (with their Keras ``type``) and, when it keeps the denoiser's I/O
contract, its name as ``variant``; otherwise ``"family": "keras"``.

``hop_ms`` (the feature hop: one decision per hop) and ``features`` are what the MCU report
(``targets``) reads to price feature extraction; a denoiser file has neither and keeps the
exact metadata above.
"""
from __future__ import annotations

import json
import os

import numpy as np

from tfdenoise.errors import TFLiteFormatError

from tfdenoise.converters import fbgraph
from tfdenoise.vocab import LayerKind, Precision

METADATA_NAME = "tfdenoise"
FORMAT = 1


def _io_entries(model_obj, which: str) -> list[dict]:
    sg = model_obj.subgraphs[0]
    sigs = model_obj.signatureDefs or []
    maps = (sigs[0].inputs if which == "inputs" else sigs[0].outputs) if sigs else []
    named = {int(m.tensorIndex): (m.name.decode() if isinstance(m.name, bytes) else m.name)
             for m in maps}
    out = []
    for idx in (sg.inputs if which == "inputs" else sg.outputs):
        t = sg.tensors[int(idx)]
        q = t.quantization
        scale = float(q.scale[0]) if q is not None and q.scale is not None and len(q.scale) else 0.0
        zp = int(q.zeroPoint[0]) if q is not None and q.zeroPoint is not None and len(q.zeroPoint) else 0
        out.append({"name": named.get(int(idx), fbgraph.tensor_name(t)),
                    "shape": [int(s) for s in t.shape],
                    "dtype": fbgraph.TYPE_NAMES.get(t.type, "?"), "scale": scale,
                    "zero_point": zp})
    return out


def layer_precision(model_obj, op_indices: list[int]) -> str:
    """``int8`` / ``fp16`` / ``fp32`` as stored in the file for these ops."""
    sg = model_obj.subgraphs[0]
    prod = fbgraph.producers(sg)
    kinds = set()
    for i in op_indices:
        op = sg.operators[i]
        name = fbgraph.op_name(model_obj, op)
        if name == "DEQUANTIZE":
            kinds.add(Precision.FP16)
            continue
        if sg.tensors[op.outputs[0]].type in (9, 7):
            kinds.add(Precision.INT8)
        for t in op.inputs:
            if t >= 0 and t in prod and fbgraph.op_name(
                    model_obj, sg.operators[prod[t]]) == "DEQUANTIZE" and \
                    sg.tensors[sg.operators[prod[t]].inputs[0]].type == 1:
                kinds.add(Precision.FP16)
    for k in (Precision.INT8, Precision.FP16):
        if k in kinds:
            return k
    return Precision.FP32


#: Bits per stored weight element of each file storage type.
STORAGE_BITS = {"int4": 4, "int8": 8, "float16": 16, "float32": 32}


def weight_storage(model_obj, op_indices: list[int]) -> str | None:
    """How the weight matrices (constants of rank >= 2) of these ops are stored: ``int4``,
    ``int8``, ``float16`` or ``float32`` (the narrowest found; None: no weight matrix)."""
    sg = model_obj.subgraphs[0]
    found = set()
    for i in op_indices:
        for t in sg.operators[i].inputs:
            ten = sg.tensors[t] if t >= 0 else None
            if ten is not None and fbgraph.is_constant(model_obj, ten) and len(ten.shape) >= 2:
                found.add(fbgraph.TYPE_NAMES.get(ten.type, "?"))
    return next((s for s in STORAGE_BITS if s in found), None)


def weight_fields(model_obj, op_indices: list[int], bits: int | None) -> dict:
    """``weight_bits`` (the trained width: ``bits`` of a QAT layer, else the stored width) and
    ``weight_storage`` of one layer (docs/design.md §8: a 5-bit grid in an INT8 container)."""
    storage = weight_storage(model_obj, op_indices)
    width = bits if bits is not None and storage in ("int4", "int8") else STORAGE_BITS.get(storage)
    return {"weight_bits": width, "weight_storage": storage}


def build_metadata(model_obj, variant, precision: str,
                   calibration: dict | None, random_weights: bool = False,
                   weight_bits: dict[str, int] | None = None, qat: dict | None = None) -> dict:
    """The metadata dict of a converted model (op indices as they are in ``model_obj``);
    ``weight_bits``: the trained width of QAT layers, ``qat``: the checkpoint's QAT stage."""
    layers = fbgraph.op_layers(model_obj)
    sizes = fbgraph.param_bytes_by_layer(model_obj)
    entries = []
    for name in ("fc_in", "rnn_0", "rnn_1", "fc_mid", "fc_out"):
        ops = [i for i, l in enumerate(layers) if l == name]
        rnn = name.startswith("rnn_")
        entries.append({"name": name, "kind": variant.cell if rnn else LayerKind.DENSE,
                        "precision": layer_precision(model_obj, ops),
                        "units": variant.units if rnn else 257,
                        "ops": ops, "param_bytes": int(sizes.get(name, 0)),
                        **weight_fields(model_obj, ops, (weight_bits or {}).get(name))})
    return {"format": FORMAT, "variant": variant.name, "precision": precision,
            "random_weights": bool(random_weights),
            "calibration": calibration, "layers": entries,
            "conversions": _conversions(model_obj, layers),
            "inputs": _io_entries(model_obj, "inputs"),
            "outputs": _io_entries(model_obj, "outputs"),
            "param_bytes": int(sizes["*"]), **({"qat": qat} if qat else {})}


def _conversions(model_obj, layers: list[str | None]) -> list[dict]:
    """The QUANTIZE / DEQUANTIZE ops of activations (ops of no layer): index, types, elements."""
    sg = model_obj.subgraphs[0]
    out = []
    for i, op in enumerate(sg.operators):
        n = fbgraph.op_name(model_obj, op)
        if layers[i] is None and n in fbgraph.CONVERSION_OPS:
            out.append({
                "op": i, "kind": n.lower(),
                "from": fbgraph.TYPE_NAMES.get(sg.tensors[op.inputs[0]].type, "?"),
                "to": fbgraph.TYPE_NAMES.get(sg.tensors[op.outputs[0]].type, "?"),
                "elements": int(np.prod(sg.tensors[op.outputs[0]].shape))})
    return out


def build_keras_metadata(model_obj, *, keras: dict, layers: list[dict], op_layer: list[str | None],
                         precision: str, calibration: dict | None, denoiser: bool) -> dict:
    """The metadata dict of a user's Keras model (:mod:`tfdenoise.converters.keras_model`).

    ``layers`` are its deployment layers ``{"name", "kind", "type", "units"}`` in graph order,
    ``op_layer`` the layer of every operator; ``keras`` says where the model came from
    (``{"model": name, "source": file, "states": [...]}``).  A model that keeps the denoiser's
    I/O contract (``denoiser``: 257 magnitudes in, 257 gains out) carries its name as
    ``variant``, so that the MCU report prices the STFT front end around it as for TinyDenoiser;
    any other model is ``"family": "keras"``."""
    sizes = fbgraph.param_bytes_by_layer(model_obj, op_layer)
    entries = []
    for la in layers:
        ops = [i for i, l in enumerate(op_layer) if l == la["name"]]
        entries.append({**la, "precision": str(layer_precision(model_obj, ops)), "ops": ops,
                        "param_bytes": int(sizes.get(la["name"], 0)),
                        **weight_fields(model_obj, ops, None)})
    head = {"variant": keras["model"]} if denoiser else {"family": "keras"}
    return {"format": FORMAT, **head, "keras": dict(keras), "precision": precision,
            "random_weights": False, "calibration": calibration, "layers": entries,
            "conversions": _conversions(model_obj, op_layer),
            "inputs": _io_entries(model_obj, "inputs"), "outputs": _io_entries(model_obj, "outputs"),
            "param_bytes": int(sizes["*"])}


def attach(model_obj, meta: dict) -> None:
    """Add (or replace) the ``tfdenoise`` metadata entry in ``model_obj``."""
    from tensorflow.lite.python import schema_py_generated as schema

    buf = schema.BufferT()
    buf.data = np.frombuffer(json.dumps(meta, sort_keys=False).encode("utf-8"), np.uint8).copy()
    model_obj.buffers.append(buf)
    entries = [m for m in (model_obj.metadata or [])
               if (m.name.decode() if isinstance(m.name, bytes) else m.name) != METADATA_NAME]
    md = schema.MetadataT()
    md.name = METADATA_NAME.encode()
    md.buffer = len(model_obj.buffers) - 1
    model_obj.metadata = entries + [md]


def read_metadata(data: bytes, path: str | os.PathLike = "<bytes>") -> dict | None:
    """The ``tfdenoise`` metadata of a flatbuffer, or ``None`` when it has none.

    Read with the ``targets`` reader (the one flatbuffer parser that needs no TensorFlow).
    """
    from tfdenoise.targets.reader import parse_tflite

    raw = parse_tflite(data, str(path)).metadata.get(METADATA_NAME)
    if raw is None:
        return None
    try:
        return json.loads(bytes(raw).rstrip(b"\x00").decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise TFLiteFormatError(f"unreadable {METADATA_NAME} metadata ({exc})", path) from None


# -- keyword spotting ---------------------------------------------------------------------------

KWS_FAMILY = "kws"


def build_kws_metadata(model_obj, *, model: str, precision: str, labels: list[str],
                       features: dict, hop_ms: float, layers: list[tuple[str, str]],
                       op_layer: list[str | None], calibration: dict | None,
                       random_weights: bool = False, weight_bits: dict[str, int] | None = None,
                       qat: dict | None = None) -> dict:
    """The metadata dict of a converted keyword-spotting model.

    ``layers`` are the deployment layers ``(name, kind)`` in graph order; ``op_layer`` the
    layer of every operator of subgraph 0 (op indices as they are in ``model_obj``).
    """
    sizes = fbgraph.param_bytes_by_layer(model_obj, op_layer)
    entries = []
    for name, kind in layers:
        ops = [i for i, l in enumerate(op_layer) if l == name]
        entries.append({"name": name, "kind": str(kind),
                        "precision": str(layer_precision(model_obj, ops)),
                        "ops": ops, "param_bytes": int(sizes.get(name, 0)),
                        **weight_fields(model_obj, ops, (weight_bits or {}).get(name))})
    return {"format": FORMAT, "family": KWS_FAMILY, "model": model, "precision": precision,
            "random_weights": bool(random_weights), "labels": [str(x) for x in labels],
            "features": dict(features), "hop_ms": float(hop_ms), "calibration": calibration,
            "layers": entries, "inputs": _io_entries(model_obj, "inputs"),
            "outputs": _io_entries(model_obj, "outputs"), "param_bytes": int(sizes["*"]),
            **({"qat": qat} if qat else {})}


def is_kws(meta: dict | None) -> bool:
    """True for the metadata of a keyword-spotting file."""
    return isinstance(meta, dict) and meta.get("family") == KWS_FAMILY
