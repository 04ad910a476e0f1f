"""CMSIS-NN layer kernels on a Cortex-M core: cycles of one layer at zero wait states, as pure
functions of (board, layer) built from the inner loops of targets/cortexm_loops.py.

Code precision of a layer: int8 layers run the int8 kernels; fp32, fp16 and hybrid layers run
the fp32 kernels (no FP16 arithmetic on FPv4/FPv5), plus per weight element read:
    fp16    LDRH + VMOV + VCVTB.F32.F16 + VSTR (TFLM's DEQUANTIZE of the weights, each inference)
    hybrid  LDRSB + VMOV + VCVT.F32.S32 (weights converted on the fly, docs/design.md §4)
    -> Mix(ld=1, fop=2) per element (+ vstr=1 for fp16)

Kernels (H units, T steps, P = out_h x out_w output pixels, O output channels, K = k_h x k_w x
in_ch patch, C channels, W = k_h x k_w window; mixes as in targets/cortexm_loops.py):
  dense     matvec(rows = out_elems, cols = macs / out_elems)
  lstm      arm_lstm_unidirectional_s8 per step: 4 gates x [matvec(H, I) + matvec(H, H)] with the
            16-bit accumulate output (requantize, LDRSH + ADD, clamp, STRH), per gate a memset of
            H int16 and arm_nn_activation_s16 on H; per step 3 elementwise int16 products
            (forget x cell, input x cell-gate accumulate, output x tanh(cell)) and tanh(cell):
            cycles = T x [4 (matvec_acc(H, I) + matvec_acc(H, H) + H act_s16 + H/2 STR)
                          + 3 H ew_mul_s16 + H act_s16]
            fp32: the same structure with fp32 matvecs, expf-based sigmoid/tanh, fp32 products
  gru       TFLite's unrolled cell: matvec(rows = 6 H, cols = macs / 6 H) + the act_elems LUT /
            expf activations + the ew_elems int8 elementwise ops (requantized)
  conv      arm_convolve_s8 (im2col + arm_nn_mat_mult_kernel_s8_s16, 2 pixels x 2 channels x 4
            columns = 16 MACs per iteration: 6 LDR, 4 SXTB16, 8 SMLAD), per pixel: k_h k_w
            memcpy chunks of in_ch bytes (bounds check + call + LDR/STR per word) and the s8 -> s16
            conversion of K values (per 4: LDR, 2 SXTAB16, 2 STR); per output requantize +
            per-channel multiplier/shift LDRs. 1x1 kernels skip the memcpy.
            fp32: im2col copy + the fp32 dot loop over K per output
  depthwise arm_depthwise_conv_s8_opt: per pixel the q7 -> q15 im2col of W x C values, per 4
            channels (W // 2) iterations of 8 MACs (6 LDR, 4 SXTB16, 8 PKHBT/PKHTB, 4 SMLAD,
            2 ADD) + a scalar tail when W is odd, per output requantize + per-channel LDRs
  pool      arm_max_pool_s8: per window element and 4 channels LDR x 2, SSUB8, SEL, STR;
            arm_avgpool_s8: per window element and 4 channels 3 LDR, 4 DSP, 2 STR; + per output
            a division (SDIV) and clamp. fp32: VLDR + 3 FP ops per window element
  softmax   arm_softmax_s8 per element: max pass, exp pass (EXP_ON_NEG: 12 saturating doubling
            multiplies = SMLAL + 6 ALU each, 7 selects) and output pass (exp again + scale);
            per row the reciprocal (3 Newton steps). fp32: expf per element + a VDIV per row
  ew / conversion / activations (act_elems) per element: int8 LUT activation (LDRSB, LDRB
            table, STRB), int8 add/mul (2 requantizations), cheap int8 ops (RELU: LDR, 2 ALU,
            STR), QUANTIZE/DEQUANTIZE (VLDR, VMUL, VCVT, VMOV, ADD, SSAT, STRB); fp32 activation
            = expf (range reduction + degree-5 polynomial: 7 VFMA, 8 FP ops, 4 ALU, 2 branches,
            a 6-deep chain) + call + VADD + VDIV
Every element loop pays the loop overhead share, every helper call core.call_cycles.
Layers of kind generic (no kernel) return None: the caller keeps the generic estimate.
"""
from __future__ import annotations

import math

from tfdenoise.targets.cores import Mix, price
from tfdenoise.targets.cortexm_loops import REQUANT, REQUANT_CORE, inner_loop, loop_overhead, matvec_cycles
from tfdenoise.targets.types import Board, Layer
from tfdenoise.vocab import CodePrecision, LayerKind, Precision

PER_CHANNEL = Mix(ld=2)                                         # multiplier + shift per output channel
ACC16_OUTPUT = REQUANT_CORE + Mix(ld=2, alu=6, st=1)            # + bias, LDRSH dst, ADD, clamp, STRH
ACT_S16 = Mix(ld=3, ld_runs=2, st=1, alu=12, shift=4, mul=2, branch=1)   # arm_nn_activation_s16
EW_MUL_S16 = Mix(ld=2, ld_runs=1, mul=1, alu=1, branch=1) + REQUANT_CORE + Mix(alu=5, st=1)
ACT_LUT_INT8 = Mix(ld=2, ld_runs=1, st=1, alu=1)                # TFLM int8 logistic/tanh LUT
EW_INT8 = 2 * REQUANT_CORE + Mix(ld=0.5, dsp=1, alu=8, st=0.25)  # arm_elementwise_add/mul_s8 per element
EW_CHEAP_INT8 = Mix(ld=1, alu=2, st=1)                          # RELU / clamp / copy per element
CONVERT = Mix(vldr=1, fop=3, alu=1, shift=1, st=1)              # QUANTIZE / DEQUANTIZE per element
EW_FP32 = Mix(vldr=2, ld_runs=1, fop=1, vstr=1)
EXPF = Mix(vfma=7, fop=8, alu=4, branch=2, fchain=6)            # newlib-style expf body
MUL_SAT = Mix(mull=1, alu=5, shift=1)                           # arm_nn_doubling_high_mult
EXP_ON_NEG = 12 * MUL_SAT + Mix(alu=30, shift=10)
DIV_POW2 = Mix(alu=7, shift=3)
DEQUANT = Mix(ld=1, fop=2)


def code_precision(layer: Layer, code: CodePrecision | None = None) -> CodePrecision:
    """The number format of the layer's inner loop on a Cortex-M (`code` overrides it)."""
    if code is not None:
        return CodePrecision(code)
    return CodePrecision.INT8 if layer.precision == Precision.INT8 else CodePrecision.FP32


def _loop(board: Board, mix: Mix) -> float:
    """Cycles of one element of an element loop: the mix + its loop-overhead share."""
    return price(board, mix + loop_overhead(board))


def act_elem_cycles(board: Board, code: CodePrecision) -> float:
    """One sigmoid/tanh element: int8 / q15 LUT, or expf + reciprocal in fp32."""
    if code != CodePrecision.FP32:
        return _loop(board, ACT_LUT_INT8)
    return price(board, EXPF + Mix(vldr=1, fop=2, vdiv=1, vstr=1)) + board.c("core.call_cycles")


def elementwise_cycles(board: Board, layer: Layer, code: CodePrecision | None = None) -> float:
    """The layer's act_elems activations and ew_elems other element-wise operations."""
    code = code_precision(layer, code)
    if layer.kind == LayerKind.CONVERSION:
        ew = _loop(board, CONVERT)
    elif code == CodePrecision.FP32:
        ew = _loop(board, EW_FP32)
    else:
        ew = _loop(board, EW_INT8 if layer.kind in (LayerKind.ELEMENTWISE, LayerKind.GRU, LayerKind.LSTM)
                   else EW_CHEAP_INT8)
    return layer.act_elems * act_elem_cycles(board, code) + layer.ew_elems * ew


def convert_weights_cycles(board: Board, layer: Layer, code: CodePrecision | None = None) -> float:
    """fp16 / hybrid layers: converting the weight elements they read to fp32 (none when a
    code precision `code` is imposed: the weights are then stored in that format)."""
    if code is not None:
        return 0.0
    if layer.precision == Precision.HYBRID:
        return layer.dequant_elems * _loop(board, DEQUANT)
    if layer.precision == Precision.FP16:
        return layer.param_elements * _loop(board, DEQUANT + Mix(vstr=1))
    return 0.0


def dense_cycles(board: Board, layer: Layer, code: CodePrecision | None = None) -> float:
    rows = max(1, layer.out_elems)
    return matvec_cycles(board, code_precision(layer, code), True, rows, layer.macs / rows) + \
        elementwise_cycles(board, layer, code)


def lstm_steps(layer: Layer) -> int:
    """Time steps of an LSTM layer (layers.py counts 5 activations per unit and step)."""
    return max(1, round(layer.act_elems / (5 * layer.units))) if layer.units else 1


def lstm_cycles(board: Board, layer: Layer, code: CodePrecision | None = None) -> float:
    h, t = max(1, layer.units), lstm_steps(layer)
    cols = layer.macs / (4 * h * t)          # input + hidden columns per gate row
    n_in = max(0.0, cols - h)
    code = code_precision(layer, code)
    if code != CodePrecision.FP32:
        out = ACC16_OUTPUT if code == CodePrecision.INT8 else None
        mv = matvec_cycles(board, code, True, h, n_in, out) + matvec_cycles(board, code, True, h, h, out)
        act, ew = _loop(board, ACT_S16), _loop(board, EW_MUL_S16)
        memset = h * 0.5 * price(board, Mix(st=1))
    else:
        mv = matvec_cycles(board, code, True, h, n_in) + matvec_cycles(board, code, True, h, h)
        act, ew, memset = act_elem_cycles(board, code), _loop(board, EW_FP32), 0.0
    return t * (4 * (mv + h * act + memset + board.c("core.call_cycles") * 3) + 3 * h * ew + h * act)


def gru_cycles(board: Board, layer: Layer, code: CodePrecision | None = None) -> float:
    rows = max(1, 6 * layer.units)
    return matvec_cycles(board, code_precision(layer, code), True, rows, layer.macs / rows) + \
        elementwise_cycles(board, layer, code)


def _memcpy(board: Board, nbytes: float) -> float:
    words, rest = divmod(nbytes, 4)
    return board.c("core.call_cycles") + price(board, Mix(ld=words + rest, st=words + rest, alu=4, branch=1))


def conv_cycles(board: Board, layer: Layer, code: CodePrecision | None = None) -> float | None:
    g = layer.geometry
    if g is None:
        return None
    p, o, k = g.out_h * g.out_w, g.out_ch, g.patch
    code = code_precision(layer, code)
    chunks = g.k_h * g.k_w
    copy = 0.0 if chunks == 1 else chunks * (_memcpy(board, g.in_ch) + price(board, Mix(alu=4, branch=1)))
    if code != CodePrecision.INT8:   # q15 / fp32: im2col of 2- / 4-byte elements + the dot loop
        width = 4 if code == CodePrecision.FP32 else 2
        return p * copy * width + matvec_cycles(board, code, True, p * o, k) + elementwise_cycles(board, layer, code)
    convert = math.ceil(k / 4) * _loop(board, Mix(ld=1, dsp=2, st=2)) + board.c("core.call_cycles")
    outputs = p * o * price(board, REQUANT + PER_CHANNEL)
    return p * (copy + convert) + _conv_int8_mac_loop(board, p, o, k) + outputs + elementwise_cycles(board, layer, code)


def _conv_int8_mac_loop(board: Board, p: int, o: int, k: int) -> float:
    """arm_nn_mat_mult_kernel_s8_s16 over p pixels x o filters x k patch (pairs of pixels and filters)."""
    body = Mix(ld=6, ld_runs=2, dsp=4, smlad=8)
    iters, tail = divmod(k, 4)
    pair = (o / 2) * (iters * price(board, body + loop_overhead(board)) + tail * price(board, Mix(ld=4, mul=4))
                      + price(board, Mix(alu=5, branch=1)))
    return (p / 2) * pair


def depthwise_cycles(board: Board, layer: Layer, code: CodePrecision | None = None) -> float | None:
    g = layer.geometry
    if g is None:
        return None
    p, c, w = g.out_h * g.out_w, g.out_ch, g.k_h * g.k_w
    code = code_precision(layer, code)
    if code == CodePrecision.FP32:
        return p * c * (w * _loop(board, Mix(vldr=2, ld_runs=1, vfma=1, fchain=1)) +
                        price(board, inner_loop(board, code).per_output)) + elementwise_cycles(board, layer, code)
    im2col = w * (board.c("core.call_cycles") + math.ceil(c / 4) * _loop(board, Mix(ld=1, dsp=2, st=2)))
    return p * (im2col + math.ceil(c / 4) * _depthwise_group(board, w) + c * price(board, REQUANT + PER_CHANNEL)) + \
        elementwise_cycles(board, layer, code)


def _depthwise_group(board: Board, w: int) -> float:
    """arm_depthwise_conv_s8_opt: the W-long window of 4 channels of one output pixel."""
    body = Mix(ld=6, ld_runs=2, dsp=12, smlad=4, alu=2)
    return (w // 2) * price(board, body + loop_overhead(board)) + (w % 2) * price(board, Mix(ld=8, mul=4, alu=2)) \
        + price(board, Mix(alu=5, branch=1))


def pool_cycles(board: Board, layer: Layer, code: CodePrecision | None = None) -> float | None:
    g = layer.geometry
    if g is None:
        return None
    p, c, w = g.out_h * g.out_w, g.out_ch, g.k_h * g.k_w
    per_window = Mix(alu=3, branch=1)
    if code_precision(layer, code) == CodePrecision.FP32:
        elem = Mix(vldr=1, fop=3)
        return p * (w * (c * _loop(board, elem) + price(board, per_window)) + c * _loop(board, Mix(fop=2, vstr=1)))
    if g.op == "MAX_POOL_2D":
        elem, out = Mix(ld=2, ld_runs=1, dsp=2, st=1), Mix(ld=1, dsp=2, st=1)
        return p * (w * (math.ceil(c / 4) * _loop(board, elem) + price(board, per_window))
                    + math.ceil(c / 4) * _loop(board, out))
    elem, out = Mix(ld=3, ld_runs=1, dsp=4, st=2), Mix(ld=1, alu=10, st=1)   # SDIV ~ 6 cycles + clamp
    return p * (w * (math.ceil(c / 4) * _loop(board, elem) + price(board, per_window)) + c * _loop(board, out))


def softmax_cycles(board: Board, layer: Layer, code: CodePrecision | None = None) -> float:
    n = max(1, layer.out_elems)
    if code_precision(layer, code) == CodePrecision.FP32:
        per = _loop(board, Mix(vldr=1, fop=3)) + price(board, EXPF + Mix(vldr=1, fop=2, vstr=1)) + \
            board.c("core.call_cycles") + _loop(board, Mix(vldr=1, fop=1, vstr=1))
        return n * per + price(board, Mix(vdiv=1))
    max_pass = _loop(board, Mix(ld=1, alu=2))
    exp_pass = _loop(board, Mix(ld=1, alu=4, branch=1) + EXP_ON_NEG + MUL_SAT + DIV_POW2)
    out_pass = _loop(board, Mix(ld=1, alu=8, branch=1, st=1) + EXP_ON_NEG + 2 * MUL_SAT + DIV_POW2)
    return n * (max_pass + exp_pass + out_pass) + price(board, 6 * MUL_SAT + Mix(alu=20))


def mac_loop_cycles(board: Board, layer: Layer, code: CodePrecision | None = None) -> float:
    """The MAC loop inside the layer's kernel cycles (before the efficiency factor): the inner
    loops over weights with their row setups, without per-output work, im2col or activations
    (the part targets/strategies.py replaces); 0 for kinds without weights."""
    code = code_precision(layer, code)
    g = layer.geometry

    def mv(rows: float, cols: float) -> float:
        return matvec_cycles(board, code, True, rows, cols, Mix()) if rows > 0 else 0.0

    if layer.kind in (LayerKind.DENSE, LayerKind.GRU):
        rows = max(1, layer.out_elems if layer.kind == LayerKind.DENSE else 6 * layer.units)
        return mv(rows, layer.macs / rows)
    if layer.kind == LayerKind.LSTM and layer.units:
        h, t = layer.units, lstm_steps(layer)
        cols = layer.macs / (4 * h * t)
        return t * 4 * (mv(h, max(0.0, cols - h)) + mv(h, h))
    if layer.kind == LayerKind.CONV and g is not None:
        p, o, k = g.out_h * g.out_w, g.out_ch, g.patch
        return _conv_int8_mac_loop(board, p, o, k) if code == CodePrecision.INT8 else mv(p * o, k)
    if layer.kind == LayerKind.DEPTHWISE_CONV and g is not None:
        p, c, w = g.out_h * g.out_w, g.out_ch, g.k_h * g.k_w
        if code == CodePrecision.FP32:
            return p * c * w * _loop(board, Mix(vldr=2, ld_runs=1, vfma=1, fchain=1))
        return p * math.ceil(c / 4) * _depthwise_group(board, w)
    return 0.0


KERNELS = {LayerKind.DENSE: dense_cycles, LayerKind.LSTM: lstm_cycles, LayerKind.GRU: gru_cycles,
           LayerKind.CONV: conv_cycles, LayerKind.DEPTHWISE_CONV: depthwise_cycles,
           LayerKind.POOL: pool_cycles, LayerKind.SOFTMAX: softmax_cycles}


def layer_compute_cycles(board: Board, layer: Layer, code: CodePrecision | None = None) -> float | None:
    """Cycles of `layer` at zero wait states before the efficiency factor, in its own code
    precision or in `code` (fp32 / q15 / int8); None: no kernel."""
    if layer.kind == LayerKind.LAYOUT:
        return 0.0
    if layer.kind in (LayerKind.ELEMENTWISE, LayerKind.CONVERSION):
        return elementwise_cycles(board, layer, code)
    fn = KERNELS.get(layer.kind)
    if fn is None or (layer.kind == LayerKind.LSTM and not layer.units):
        return None
    cycles = fn(board, layer, code)
    return None if cycles is None else cycles + convert_weights_cycles(board, layer, code)
