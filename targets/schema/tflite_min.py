"""Minimal flatbuffers bindings for the parts of the TFLite schema that `targets` reads.

Written in the style of `flatc --python` output (same class and method names as
`ai_edge_litert.schema_py_generated`), restricted to the tables and fields the reader uses.
Field vtable offsets follow tensorflow/lite/schema/schema.fbs (schema version 3):

    Model: version 4, operator_codes 6, subgraphs 8, description 10, buffers 12, metadata 16
    OperatorCode: deprecated_builtin_code 4 (int8), custom_code 6, builtin_code 10 (int32)
    SubGraph: tensors 4, inputs 6, outputs 8, operators 10, name 12
    Tensor: shape 4, type 6 (int8), buffer 8 (uint32), name 10, quantization 12, is_variable 14
    QuantizationParameters: scale 8 (float32[]), zero_point 10 (int64[]), quantized_dimension 16
    Operator: opcode_index 4 (uint32), inputs 6, outputs 8, intermediates 20
    Buffer: data 4 (ubyte[]), offset 6 (uint64), size 8 (uint64)
    Metadata: name 4, buffer 6 (uint32)

Used only when ai-edge-litert is not installed (see `targets.schema.load`).
"""
from __future__ import annotations

import flatbuffers
from flatbuffers import number_types as N

np = flatbuffers.compat.import_numpy()


class _Table:
    """Common accessors over a flatbuffers table."""

    __slots__ = ["_tab"]

    def Init(self, buf: bytes, pos: int) -> None:
        self._tab = flatbuffers.table.Table(buf, pos)

    def _o(self, slot: int) -> int:
        return N.UOffsetTFlags.py_type(self._tab.Offset(slot))

    def _scalar(self, slot: int, flags, default=0):
        o = self._o(slot)
        return self._tab.Get(flags, o + self._tab.Pos) if o else default

    def _string(self, slot: int):
        o = self._o(slot)
        return self._tab.String(o + self._tab.Pos) if o else None

    def _vec_len(self, slot: int) -> int:
        o = self._o(slot)
        return self._tab.VectorLen(o) if o else 0

    def _vec_numpy(self, slot: int, flags):
        o = self._o(slot)
        return self._tab.GetVectorAsNumpy(flags, o) if o else 0

    def _vec_table(self, slot: int, j: int, cls):
        o = self._o(slot)
        if not o:
            return None
        x = self._tab.Vector(o) + j * 4
        obj = cls()
        obj.Init(self._tab.Bytes, self._tab.Indirect(x))
        return obj

    def _table(self, slot: int, cls):
        o = self._o(slot)
        if not o:
            return None
        obj = cls()
        obj.Init(self._tab.Bytes, self._tab.Indirect(o + self._tab.Pos))
        return obj


class Buffer(_Table):
    def DataLength(self) -> int: return self._vec_len(4)
    def DataAsNumpy(self): return self._vec_numpy(4, N.Uint8Flags)
    def Offset(self) -> int: return self._scalar(6, N.Uint64Flags)
    def Size(self) -> int: return self._scalar(8, N.Uint64Flags)


class Metadata(_Table):
    def Name(self): return self._string(4)
    def Buffer(self) -> int: return self._scalar(6, N.Uint32Flags)


class OperatorCode(_Table):
    def DeprecatedBuiltinCode(self) -> int: return self._scalar(4, N.Int8Flags)
    def CustomCode(self): return self._string(6)
    def Version(self) -> int: return self._scalar(8, N.Int32Flags, 1)
    def BuiltinCode(self) -> int: return self._scalar(10, N.Int32Flags)


class QuantizationParameters(_Table):
    def ScaleAsNumpy(self): return self._vec_numpy(8, N.Float32Flags)
    def ScaleLength(self) -> int: return self._vec_len(8)
    def ZeroPointAsNumpy(self): return self._vec_numpy(10, N.Int64Flags)
    def ZeroPointLength(self) -> int: return self._vec_len(10)
    def QuantizedDimension(self) -> int: return self._scalar(16, N.Int32Flags)


class Tensor(_Table):
    def ShapeAsNumpy(self): return self._vec_numpy(4, N.Int32Flags)
    def ShapeLength(self) -> int: return self._vec_len(4)
    def Type(self) -> int: return self._scalar(6, N.Int8Flags)
    def Buffer(self) -> int: return self._scalar(8, N.Uint32Flags)
    def Name(self): return self._string(10)
    def Quantization(self): return self._table(12, QuantizationParameters)
    def IsVariable(self) -> bool: return bool(self._scalar(14, N.BoolFlags, False))


class Operator(_Table):
    def OpcodeIndex(self) -> int: return self._scalar(4, N.Uint32Flags)
    def InputsAsNumpy(self): return self._vec_numpy(6, N.Int32Flags)
    def InputsLength(self) -> int: return self._vec_len(6)
    def OutputsAsNumpy(self): return self._vec_numpy(8, N.Int32Flags)
    def OutputsLength(self) -> int: return self._vec_len(8)


class SubGraph(_Table):
    def TensorsLength(self) -> int: return self._vec_len(4)
    def Tensors(self, j: int): return self._vec_table(4, j, Tensor)
    def InputsAsNumpy(self): return self._vec_numpy(6, N.Int32Flags)
    def InputsLength(self) -> int: return self._vec_len(6)
    def OutputsAsNumpy(self): return self._vec_numpy(8, N.Int32Flags)
    def OutputsLength(self) -> int: return self._vec_len(8)
    def OperatorsLength(self) -> int: return self._vec_len(10)
    def Operators(self, j: int): return self._vec_table(10, j, Operator)
    def Name(self): return self._string(12)


class Model(_Table):
    @classmethod
    def GetRootAs(cls, buf: bytes, offset: int = 0) -> "Model":
        n = flatbuffers.encode.Get(flatbuffers.packer.uoffset, buf, offset)
        x = cls()
        x.Init(buf, n + offset)
        return x

    def Version(self) -> int: return self._scalar(4, N.Uint32Flags)
    def OperatorCodesLength(self) -> int: return self._vec_len(6)
    def OperatorCodes(self, j: int): return self._vec_table(6, j, OperatorCode)
    def SubgraphsLength(self) -> int: return self._vec_len(8)
    def Subgraphs(self, j: int): return self._vec_table(8, j, SubGraph)
    def Description(self): return self._string(10)
    def BuffersLength(self) -> int: return self._vec_len(12)
    def Buffers(self, j: int): return self._vec_table(12, j, Buffer)
    def MetadataLength(self) -> int: return self._vec_len(16)
    def Metadata(self, j: int): return self._vec_table(16, j, Metadata)
