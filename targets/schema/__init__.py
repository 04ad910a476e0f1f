"""TFLite flatbuffer schema bindings: the ones shipped in ai-edge-litert, else our own.

`load(prefer_builtin=False)` returns a namespace with `Model`, `BUILTIN_OPERATOR` (code ->
name) and `TENSOR_TYPE` (code -> name) and `source` (which bindings are in use).
"""
from __future__ import annotations

from types import SimpleNamespace

from tfdenoise.targets.schema import enums


def _names(cls: type) -> dict[int, str]:
    return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


def load(prefer_builtin: bool = False) -> SimpleNamespace:
    """Schema bindings: ai-edge-litert's generated code if importable, else `tflite_min`."""
    if not prefer_builtin:
        try:
            from ai_edge_litert import schema_py_generated as gen  # no TensorFlow import

            ops = dict(enums.BUILTIN_OPERATOR)
            ops.update(_names(gen.BuiltinOperator))
            types = dict(enums.TENSOR_TYPE)
            types.update(_names(gen.TensorType))
            return SimpleNamespace(Model=gen.Model, BUILTIN_OPERATOR=ops, TENSOR_TYPE=types,
                                   source="ai_edge_litert.schema_py_generated")
        except ImportError:
            pass
    from tfdenoise.targets.schema import tflite_min

    return SimpleNamespace(Model=tflite_min.Model, BUILTIN_OPERATOR=enums.BUILTIN_OPERATOR,
                           TENSOR_TYPE=enums.TENSOR_TYPE, source="targets.schema.tflite_min")
