"""Small graph IR of a .tflite model, independent of flatbuffers and TensorFlow.

`targets.reader.read_tflite` builds it from a file; `targets.reference` builds the same IR
analytically for the TinyDenoiser variants. Everything downstream reads only this IR.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property

#: bytes per element of the TFLite tensor types the cost model knows about
DTYPE_BYTES: dict[str, float] = {
    "FLOAT32": 4, "FLOAT16": 2, "BFLOAT16": 2, "INT32": 4, "UINT8": 1, "INT64": 8,
    "BOOL": 1, "INT16": 2, "INT8": 1, "FLOAT64": 8, "UINT32": 4, "UINT16": 2,
    "UINT64": 8, "INT4": 0.5, "UINT4": 0.5, "INT2": 0.25, "COMPLEX64": 8,
    "COMPLEX128": 16, "FLOAT8_E4M3FN": 1, "FLOAT8_E5M2": 1, "STRING": 1,
    "RESOURCE": 0, "VARIANT": 0,
}


@dataclass(frozen=True)
class Quantization:
    """Affine quantization of a tensor: real = scale * (q - zero_point)."""

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int = 0


@dataclass(frozen=True)
class Tensor:
    """One tensor of a subgraph. `data` is set for constants (weights, biases)."""

    index: int
    name: str
    dtype: str
    shape: tuple[int, ...]
    quant: Quantization | None = None
    data: bytes | None = None
    is_variable: bool = False

    @property
    def size(self) -> int:
        """Number of elements (unknown/dynamic dims count as 1)."""
        n = 1
        for d in self.shape:
            n *= max(int(d), 1)
        return n

    @property
    def nbytes(self) -> int:
        """Bytes the tensor occupies at its stored dtype."""
        if self.data is not None:
            return len(self.data)
        return int(round(self.size * DTYPE_BYTES.get(self.dtype, 4)))

    @property
    def is_constant(self) -> bool:
        return self.data is not None and len(self.data) > 0


@dataclass(frozen=True)
class Operator:
    """One operator: its builtin (or custom) name and tensor indices (-1 = optional absent)."""

    index: int
    opcode: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


@dataclass(frozen=True)
class Subgraph:
    """Tensors, operators (in execution order) and graph inputs/outputs."""

    name: str
    tensors: tuple[Tensor, ...]
    operators: tuple[Operator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]

    @cached_property
    def producers(self) -> dict[int, int]:
        """tensor index -> index of the operator that writes it."""
        return {t: op.index for op in self.operators for t in op.outputs if t >= 0}

    @cached_property
    def consumers(self) -> dict[int, tuple[int, ...]]:
        """tensor index -> indices of operators that read it."""
        out: dict[int, list[int]] = {}
        for op in self.operators:
            for t in op.inputs:
                if t >= 0:
                    out.setdefault(t, []).append(op.index)
        return {k: tuple(v) for k, v in out.items()}

    def tensor(self, index: int) -> Tensor:
        return self.tensors[index]

    def op_inputs(self, op: Operator) -> list[Tensor]:
        return [self.tensors[i] for i in op.inputs if i >= 0]

    def op_outputs(self, op: Operator) -> list[Tensor]:
        return [self.tensors[i] for i in op.outputs if i >= 0]

    def ancestors(self, tensor: int) -> set[int]:
        """Operator indices that `tensor` depends on (transitively)."""
        seen: set[int] = set()
        stack = [tensor]
        while stack:
            p = self.producers.get(stack.pop())
            if p is not None and p not in seen:
                seen.add(p)
                stack.extend(i for i in self.operators[p].inputs if i >= 0)
        return seen

    def descendants(self, tensor: int) -> set[int]:
        """Operator indices that read `tensor` directly or transitively."""
        seen: set[int] = set()
        stack = [tensor]
        while stack:
            for c in self.consumers.get(stack.pop(), ()):
                if c not in seen:
                    seen.add(c)
                    stack.extend(o for o in self.operators[c].outputs if o >= 0)
        return seen


@dataclass(frozen=True)
class Graph:
    """A whole model: subgraphs (0 is the main one) and metadata entries name -> bytes."""

    path: str
    subgraphs: tuple[Subgraph, ...]
    metadata: dict[str, bytes] = field(default_factory=dict)
    version: int = 3
    description: str = ""
    schema_source: str = ""

    @property
    def main(self) -> Subgraph:
        return self.subgraphs[0]

    def tfdenoise_metadata(self) -> dict | None:
        """The `tfdenoise` metadata JSON (written by converters), or None if absent/invalid."""
        raw = self.metadata.get("tfdenoise")
        if not raw:
            return None
        try:
            meta = json.loads(raw.rstrip(b"\x00").decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return None
        return meta if isinstance(meta, dict) else None

    @property
    def param_bytes(self) -> int:
        """Bytes of all constant tensors of the main subgraph."""
        return sum(t.nbytes for t in self.main.tensors if t.is_constant)
