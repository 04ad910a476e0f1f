"""Read a .tflite flatbuffer into the `targets.graph` IR, without TensorFlow.

Checks, in order: file readable, size >= 8, file identifier "TFL3" at bytes 4..8, root
table offset inside the file, then every table while decoding (buffer index, operator code
index and tensor indices in range; constant sizes consistent with shape x dtype; buffers
stored by offset -- the >2 GB layout where `Buffer.offset/size` point past the flatbuffer --
inside the file). Any failure raises `TFLiteFormatError` naming the file and what was
being parsed when it failed.  Packed sub-byte constants (INT4: two values per byte, the first
in the low nibble) keep their packed bytes: ``Tensor.nbytes`` is the container size.
"""
from __future__ import annotations

import math
import struct
from pathlib import Path

from tfdenoise.targets import schema as schema_pkg
from tfdenoise.targets.graph import DTYPE_BYTES, Graph, Operator, Quantization, Subgraph, Tensor
from tfdenoise.errors import InputError, TFLiteFormatError

IDENTIFIER = b"TFL3"


def read_tflite(path: str | Path, prefer_builtin_schema: bool = False) -> Graph:
    """Parse `path` into a Graph. Raises InputError (missing) or TFLiteFormatError (corrupt)."""
    path = Path(path)
    try:
        buf = path.read_bytes()
    except FileNotFoundError:
        raise InputError("no such .tflite file", path) from None
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror}", path) from None
    return parse_tflite(buf, str(path), prefer_builtin_schema)


def parse_tflite(buf: bytes, name: str = "<bytes>", prefer_builtin_schema: bool = False) -> Graph:
    """Parse in-memory .tflite bytes; `name` is used in error messages."""
    if len(buf) < 8:
        raise TFLiteFormatError(f"file too short ({len(buf)} bytes) to be a TFLite flatbuffer", name)
    if buf[4:8] != IDENTIFIER:
        raise TFLiteFormatError(
            f"not a TFLite model: file identifier is {bytes(buf[4:8])!r}, expected {IDENTIFIER!r}",
            name)
    (root,) = struct.unpack_from("<I", buf, 0)
    if root + 4 > len(buf):
        raise TFLiteFormatError(f"truncated: root table offset {root} beyond end of file "
                                f"({len(buf)} bytes)", name)
    schema = schema_pkg.load(prefer_builtin_schema)
    parser = _Parser(buf, name, schema)
    return parser.graph()


class _Parser:
    """Walks the flatbuffer tables; `where` tracks what is being parsed for error messages."""

    def __init__(self, buf: bytes, name: str, schema) -> None:
        self.buf = buf
        self.name = name
        self.schema = schema
        self.where = "model header"

    def fail(self, message: str) -> TFLiteFormatError:
        return TFLiteFormatError(f"while parsing {self.where}: {message}", self.name)

    def graph(self) -> Graph:
        try:
            model = self.schema.Model.GetRootAs(self.buf, 0)
            self.where = "buffers"
            buffers = [self._buffer(model, i) for i in range(model.BuffersLength())]
            self.where = "operator codes"
            opcodes = [self._opcode(model.OperatorCodes(i)) for i in range(model.OperatorCodesLength())]
            subgraphs = []
            for s in range(model.SubgraphsLength()):
                self.where = f"subgraph {s}"
                subgraphs.append(self._subgraph(model.Subgraphs(s), s, buffers, opcodes))
            self.where = "metadata"
            metadata = {}
            for i in range(model.MetadataLength()):
                m = model.Metadata(i)
                key = _text(m.Name()) or f"metadata_{i}"
                idx = m.Buffer()
                if idx >= len(buffers):
                    raise self.fail(f"metadata {key!r} refers to buffer {idx} of {len(buffers)}")
                metadata[key] = buffers[idx]
            self.where = "model header"
            description = _text(model.Description()) or ""
            version = model.Version()
        except TFLiteFormatError:
            raise
        except (struct.error, IndexError, ValueError, TypeError, UnicodeDecodeError,
                OverflowError, AttributeError) as exc:
            raise self.fail(f"corrupt or truncated flatbuffer ({type(exc).__name__}: {exc})") from None
        if not subgraphs:
            raise TFLiteFormatError("model has no subgraph", self.name)
        return Graph(path=self.name, subgraphs=tuple(subgraphs), metadata=metadata,
                     version=version, description=description, schema_source=self.schema.source)

    def _buffer(self, model, i: int) -> bytes:
        self.where = f"buffer {i}"
        b = model.Buffers(i)
        offset, size = int(b.Offset()), int(b.Size())
        if offset > 1:  # data stored after the flatbuffer (large-model layout)
            if offset + size > len(self.buf):
                raise self.fail(f"data at offset {offset} size {size} runs past end of file "
                                f"({len(self.buf)} bytes)")
            return bytes(self.buf[offset:offset + size])
        if b.DataLength() == 0:
            return b""
        data = b.DataAsNumpy()
        return data.tobytes()

    def _opcode(self, code) -> str:
        builtin = max(int(code.BuiltinCode()), int(code.DeprecatedBuiltinCode()))
        name = self.schema.BUILTIN_OPERATOR.get(builtin)
        if name == "CUSTOM" or name is None:
            custom = _text(code.CustomCode())
            return f"CUSTOM:{custom}" if custom else f"UNKNOWN_{builtin}"
        return name

    def _subgraph(self, sg, s: int, buffers: list[bytes], opcodes: list[str]) -> Subgraph:
        tensors = []
        for t in range(sg.TensorsLength()):
            self.where = f"subgraph {s} tensor {t}"
            tensors.append(self._tensor(sg.Tensors(t), t, buffers))
        n = len(tensors)
        ops = []
        for o in range(sg.OperatorsLength()):
            self.where = f"subgraph {s} operator {o}"
            op = sg.Operators(o)
            idx = op.OpcodeIndex()
            if idx >= len(opcodes):
                raise self.fail(f"operator code index {idx} out of range ({len(opcodes)} codes)")
            ins = _ints(op.InputsAsNumpy()) if op.InputsLength() else ()
            outs = _ints(op.OutputsAsNumpy()) if op.OutputsLength() else ()
            for t in ins + outs:
                if not -1 <= t < n:
                    raise self.fail(f"tensor index {t} out of range ({n} tensors)")
            ops.append(Operator(o, opcodes[idx], ins, outs))
        self.where = f"subgraph {s} inputs/outputs"
        inputs = _ints(sg.InputsAsNumpy()) if sg.InputsLength() else ()
        outputs = _ints(sg.OutputsAsNumpy()) if sg.OutputsLength() else ()
        for t in inputs + outputs:
            if not 0 <= t < n:
                raise self.fail(f"graph input/output tensor {t} out of range ({n} tensors)")
        return Subgraph(_text(sg.Name()) or f"subgraph_{s}", tuple(tensors), tuple(ops),
                        inputs, outputs)

    def _tensor(self, t, index: int, buffers: list[bytes]) -> Tensor:
        dtype = self.schema.TENSOR_TYPE.get(int(t.Type()), f"TYPE_{t.Type()}")
        shape = _ints(t.ShapeAsNumpy()) if t.ShapeLength() else ()
        if any(d < -1 for d in shape):
            raise self.fail(f"negative dimension in shape {shape}")
        b = t.Buffer()
        if b >= len(buffers):
            raise self.fail(f"buffer index {b} out of range ({len(buffers)} buffers)")
        data = buffers[b] if b > 0 and buffers[b] else None
        name = _text(t.Name()) or f"tensor_{index}"
        if data is not None and dtype in DTYPE_BYTES and DTYPE_BYTES[dtype] > 0:
            # sub-byte types (INT4, UINT4, INT2) are packed: a partial last byte is padded
            expected = int(math.ceil(_prod(shape) * DTYPE_BYTES[dtype]))
            if expected != len(data) and dtype != "STRING":
                raise self.fail(f"constant {name!r} has {len(data)} bytes, shape {shape} "
                                f"x {dtype} needs {expected}")
        quant = None
        q = t.Quantization()
        if q is not None and q.ScaleLength():
            zp = tuple(int(z) for z in q.ZeroPointAsNumpy()) if q.ZeroPointLength() else (0,)
            quant = Quantization(tuple(float(x) for x in q.ScaleAsNumpy()), zp,
                                 int(q.QuantizedDimension()))
        return Tensor(index, name, dtype, shape, quant, data, bool(t.IsVariable()))


def _ints(arr) -> tuple[int, ...]:
    return tuple(int(x) for x in arr)


def _prod(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= max(d, 1) if d != 0 else 0
    return n


def _text(value) -> str | None:
    if value is None:
        return None
    return value.decode("utf-8") if isinstance(value, (bytes, bytearray)) else str(value)
