"""Shapes of convolution-like operators, from their tensors only (no builtin options needed).

    conv      input [N, H, W, C], filter [O, KH, KW, C], output [N, OH, OW, O]
    depthwise input [N, H, W, C], filter [1, KH, KW, C*M], output [N, OH, OW, C*M]
    pool      input [N, H, W, C], output [N, OH, OW, C]; window KH x KW taken as the
              input/output ratio (ceil(H / OH) x ceil(W / OW)): exact for the non-overlapping
              windows of the models here (window = stride), an estimate otherwise
    1-D models (Conv1D) convert to CONV_2D with H = 1, so they read the same way.
Stride and padding do not change the work per output element, only the output shape, which
the output tensor already gives.
"""
from __future__ import annotations

import math

from tfdenoise.targets.graph import Operator, Subgraph, Tensor
from tfdenoise.targets.types import ConvGeometry

CONV_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV")
POOL_OPS = ("MAX_POOL_2D", "AVERAGE_POOL_2D", "L2_POOL_2D")


def _nhwc(t: Tensor) -> tuple[int, int, int] | None:
    """(H, W, C) of a rank-4 NHWC tensor, else None."""
    if len(t.shape) != 4:
        return None
    return tuple(max(1, int(d)) for d in t.shape[1:])  # type: ignore[return-value]


def op_geometry(sg: Subgraph, op: Operator, weights: Tensor | None = None) -> ConvGeometry | None:
    """Geometry of `op` if it is a convolution or pooling with rank-4 tensors, else None.

    `weights`: the filter tensor when it is not `op.inputs[1]` itself (e.g. behind a DEQUANTIZE).
    """
    if op.opcode not in CONV_OPS + POOL_OPS or not op.inputs or not op.outputs or op.outputs[0] < 0:
        return None
    data_in = op.inputs[2] if op.opcode == "TRANSPOSE_CONV" and len(op.inputs) > 2 else op.inputs[0]
    if data_in < 0:
        return None
    src, dst = _nhwc(sg.tensors[data_in]), _nhwc(sg.tensors[op.outputs[0]])
    if src is None or dst is None:
        return None
    if op.opcode in POOL_OPS:
        k_h, k_w = math.ceil(src[0] / dst[0]), math.ceil(src[1] / dst[1])
    else:
        w = weights if weights is not None else (sg.tensors[op.inputs[1]] if len(op.inputs) > 1 else None)
        if w is None or len(w.shape) != 4:
            return None
        k_h, k_w = int(w.shape[1]), int(w.shape[2])
    return ConvGeometry(op=op.opcode, in_h=src[0], in_w=src[1], in_ch=src[2],
                        out_h=dst[0], out_w=dst[1], out_ch=dst[2], k_h=k_h, k_w=k_w)
