"""The 8-core CNN kernels of targets/cnn_kernels.py and the conv tiling of targets/tiling.py,
each against a hand count of its loops on gap9 (constants of targets/boards/gap9.toml:
conv loop 32 MACs / 14 cycles, depthwise loop 4 MACs / 3 cycles, im2col 0.5 cycle/B,
requantization 5 cycles, max 1 cycle/elem, average 4 cycles/elem + 35-cycle divide,
elementwise 1.5, INT8 exp LUT 2 cycles, FP16 / FP32 at 1/2 and 1/4 of the INT8 lanes with the
1.1 FPU stall; 8 cores)."""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest

from tfdenoise.targets import analyze, cnn_kernels, kernels
from tfdenoise.targets.layers import group_layers
from tfdenoise.targets.reader import read_tflite
from tfdenoise.targets.tiling import conv_tiles, l1_usable, stride_h, tile_layer
from tfdenoise.targets.types import ConvGeometry, Layer, ParamTensor
from tfdenoise.vocab import LayerKind, Precision


@pytest.fixture(scope="module")
def foreign(tflite_dir):
    """Layers of the foreign CNN fixture by name (conftest: Conv2D 8 x 3x3 'same' on 16x16x3,
    DepthwiseConv2D 3x3, MaxPool 2, AvgPool 2, Dense 10, Softmax), INT8."""
    layers, _ = group_layers(read_tflite(tflite_dir / "foreign_int8.tflite"))
    return {la.kind if la.kind != LayerKind.POOL else la.geometry.op: la for la in layers}


def conv_layer(geo: ConvGeometry, precision=Precision.INT8, weight_bytes: int | None = None,
               kind=LayerKind.CONV) -> Layer:
    """A conv layer of geometry `geo` with one weight tensor (+ 4-byte bias per channel)."""
    per = geo.k_h * geo.k_w * (geo.in_ch if kind == LayerKind.CONV else 1)
    w = weight_bytes if weight_bytes is not None else geo.out_ch * per
    macs = geo.outputs * per
    return Layer(index=0, name="conv", kind=kind, precision=precision, ops=(0,), macs=macs,
                 params=(ParamTensor(1, "w", w, w), ParamTensor(2, "b", 4 * geo.out_ch, geo.out_ch)),
                 inputs=(0,), outputs=(3,), in_elems=geo.in_h * geo.in_w * geo.in_ch,
                 out_elems=geo.outputs, geometry=geo)


def test_conv_im2col_matrix_loop_by_hand(gap9, foreign):
    conv = foreign[LayerKind.CONV]
    assert cnn_kernels.has_kernel(gap9, conv) and conv.act_elems == conv.ew_elems == 0
    # patch 3*3*3 = 27 -> 6 SIMD iterations + 3 scalar ones of the 14-cycle loop, + 8 x 5 requant
    block = (6 + 3) * 14 + 8 * 5
    im2col = 27 * 0.5                       # bytes per pixel x 0.5 cycle/B
    # 16 rows / 8 cores = 2 rows x 16 px = 32 px per core = 16 pixel pairs x 2 channel quads
    rows = 16 * 2 * block + 32 * im2col
    channels = 128 * 1 * block + 256 * im2col   # 2 quads on 8 cores: every core builds all 256 px
    assert cnn_kernels.conv_cycles(gap9, conv) == rows < channels
    assert kernels.core_cycles(gap9, conv) == rows


def test_pointwise_and_channel_split_by_hand(gap9):
    pw = conv_layer(ConvGeometry("CONV_2D", 25, 5, 64, 25, 5, 64, 1, 1))
    assert cnn_kernels.is_pointwise(pw.geometry)
    block = 16 * 14 + 8 * 5                 # P = 64: 16 SIMD iterations, no im2col
    # blocks per core: rows ceil(25/8) = 4 rows x 5 = 20 px -> 10 pairs x 16 quads = 160;
    # pixels ceil(125/8) = 16 px -> 8 x 16 = 128; channels 63 pairs x ceil(16/8) = 2 quads = 126
    assert cnn_kernels.conv_cycles(gap9, pw) == 126 * block
    fc_like = conv_layer(ConvGeometry("CONV_2D", 1, 1, 256, 1, 1, 64, 1, 1))
    # one pixel: the spatial splits leave 7 cores idle, the channel split gives 2 quads per core
    block = 64 * 14 + 8 * 5
    assert cnn_kernels.conv_cycles(gap9, fc_like) == 1 * 2 * block


def test_depthwise_loop_by_hand(gap9, foreign):
    dw = foreign[LayerKind.DEPTHWISE_CONV]
    # 8 channels on 8 cores; per output: 3x3 = 2 SIMD + 1 scalar iteration of 3 cycles + requant
    per_out = 3 * 3 + 5
    column = 16 * 3 * 1 * 0.5               # H_in x k_w bytes copied per output column
    assert cnn_kernels.depthwise_cycles(gap9, dw) == 1 * (256 * per_out + 16 * column)
    # no input reuse across channels: fewer MACs per cycle than the conv loop
    assert gap9.c("kernels.int8_dw_loop_macs") / gap9.c("kernels.int8_dw_loop_cycles") < \
        gap9.c("kernels.int8_conv_loop_macs") / gap9.c("kernels.int8_conv_loop_cycles")
    assert dw.macs / cnn_kernels.depthwise_cycles(gap9, dw) < \
        foreign[LayerKind.CONV].macs / cnn_kernels.conv_cycles(gap9, foreign[LayerKind.CONV])


def test_pooling_and_softmax_by_hand(gap9, foreign):
    mx, avg, sm = foreign["MAX_POOL_2D"], foreign["AVERAGE_POOL_2D"], foreign[LayerKind.SOFTMAX]
    # max 16x16x8 -> 8x8x8: 512 outputs / 8 cores x 4-element window x 1 cycle x 1 byte
    assert cnn_kernels.pool_cycles(gap9, mx) == 64 * 4 * 1
    # avg 8x8x8 -> 4x4x8: 128 / 8 = 16 outputs per core x (4 x 4 cycles + requant 5 + divide 35)
    assert cnn_kernels.pool_cycles(gap9, avg) == 16 * (4 * 4 + 5 + 35)
    # softmax over 10: 2 elements per core x (LUT exp 2 + 3 passes x 1.5) + 2 reductions x 8 cores x 1.5
    assert sm.out_elems == 10 and cnn_kernels.softmax_cycles(gap9, sm) == 2 * (2 + 4.5) + 2 * 8 * 1.5
    assert kernels.core_cycles(gap9, mx) == 256  # the pool's element-wise count is not added again


def test_fp16_and_fp32_variants_by_hand(gap9, foreign):
    conv = foreign[LayerKind.CONV]
    fp16, fp32 = (dataclasses.replace(conv, precision=p) for p in (Precision.FP16, Precision.FP32))
    assert cnn_kernels.lanes(gap9, Precision.FP16) == 2 and cnn_kernels.lanes(gap9, Precision.FP32) == 1
    block16 = (13 + 1) * 14 * 1.1 + 40      # 27 = 13 pairs + 1, FPU stall 1.1
    assert cnn_kernels.conv_cycles(gap9, fp16) == pytest.approx(16 * 2 * block16 + 32 * 27 * 2 * 0.5)
    block32 = 27 * 14 * 1.1 + 40
    assert cnn_kernels.conv_cycles(gap9, fp32) == pytest.approx(16 * 2 * block32 + 32 * 27 * 4 * 0.5)
    mx16 = dataclasses.replace(foreign["MAX_POOL_2D"], precision=Precision.FP16)
    assert cnn_kernels.pool_cycles(gap9, mx16) == 64 * 4 * 1 * 2   # 2 FP16 lanes per word


@pytest.mark.parametrize("name", ["foreign_int8", "foreign_fp32"])
def test_conv_model_is_priced_not_estimated_on_gap9(tflite, name):
    r = analyze(tflite(name), board="gap9")
    assert not any(t.estimate for t in r.schedule.layers)
    assert not any(la.estimate for la in r.layers)
    assert not any("generic estimate" in w for w in r.warnings)
    kinds = {t.kind for t in r.schedule.layers}
    assert {LayerKind.CONV, LayerKind.DEPTHWISE_CONV, LayerKind.POOL, LayerKind.SOFTMAX} <= kinds


def test_ops_without_a_kernel_stay_estimates(gap9, foreign):
    conv = foreign[LayerKind.CONV]
    transpose = dataclasses.replace(conv, geometry=dataclasses.replace(conv.geometry, op="TRANSPOSE_CONV"))
    no_geo = dataclasses.replace(conv, geometry=None)
    assert not cnn_kernels.has_kernel(gap9, transpose) and not cnn_kernels.has_kernel(gap9, no_geo)
    assert kernels.core_cycles(gap9, no_geo) == kernels.mac_cycles(gap9, no_geo)  # generic FC-loop estimate


def test_rnn_results_unchanged():
    """The shipped LSTM128 mixed file: the demo's 0.365 ms on gap9 (README), no CNN kernel involved."""
    from tfdenoise.pretrained import tflite

    r = analyze(tflite("lstm128", "mixed"), board="gap9")
    assert round(r.schedule.latency_ms, 3) == 0.365
    assert not any(cnn_kernels.has_kernel(r.board, la) for la in r.layers)


def test_stride_from_shapes():
    assert stride_h(ConvGeometry("CONV_2D", 49, 10, 1, 25, 5, 64, 10, 4)) == 2      # 'same', stride 2
    assert stride_h(ConvGeometry("CONV_2D", 40, 30, 1, 9, 1, 186, 8, 30)) == 4     # 'valid', stride 4
    assert stride_h(ConvGeometry("CONV_2D", 16, 16, 3, 16, 16, 8, 3, 3)) == 1


def test_conv_that_does_not_fit_l1_is_tiled_by_hand(gap9):
    """3x3 conv 64x64x32 -> 64x64x64 INT8: 131 kB input, 262 kB output, 18 kB weights: tiled."""
    geo = ConvGeometry("CONV_2D", 64, 64, 32, 64, 64, 64, 3, 3)
    la = conv_layer(geo)
    w = la.param_bytes                                  # 18,432 + 256 bias bytes
    usable = l1_usable(gap9)                            # 120,000 - 9 x 1,024
    cap = (usable - 8 * 2 * 9 * 32) // 2                # minus 8 per-core im2col buffers of 2 pixels
    t = conv_tiles(gap9, la)
    assert t.cap == cap and t.fits and t.n_tiles > 1

    def size(co, h):                                    # weights + input rows with halo + output rows
        return -(-(co * w / 64 + (h - 1 + 3) * 64 * 32 + h * 64 * co) // 1)

    assert t.tile_bytes == size(t.co_t, t.h_t) <= cap
    assert t.co_t == 64 and size(64, t.h_t + 1) > cap   # all channels, as many rows as fit
    n_h = -(-64 // t.h_t)
    assert t.n_tiles == n_h
    assert t.l2_bytes == w + n_h * (t.h_t + 2) * 64 * 32 + 64 * 64 * 64   # input halo re-read per tile
    tiling = tile_layer(gap9, la, SimpleNamespace(streamed_bytes={}))
    assert tiling.n_tiles == t.n_tiles and tiling.fits_l1 and tiling.tile_bytes == t.tile_bytes
    assert sum(g.n_tiles * g.l2_bytes for g in tiling.groups) == pytest.approx(t.l2_bytes, abs=t.n_tiles)


def test_conv_whose_smallest_tile_exceeds_l1(gap9):
    """4 filters of 3x3x512 (18 kB) + the 3 input rows of one output row (6 kB) exceed the
    18.5 kB a tile has beside the 8 im2col buffers (8 x 2 x 4.6 kB): no tile fits; the report says so."""
    la = conv_layer(ConvGeometry("CONV_2D", 4, 4, 512, 4, 4, 8, 3, 3))
    t = conv_tiles(gap9, la)
    assert t.cap == (l1_usable(gap9) - 8 * 2 * 9 * 512) // 2 == 18528
    assert not t.fits and t.co_t == 4 and t.h_t == 1
    assert t.tile_bytes == 4 * (4608 + 4) + 3 * 4 * 512 + 1 * 4 * 4
    tiling = tile_layer(gap9, la, SimpleNamespace(streamed_bytes={}))
    assert not tiling.fits_l1 and tiling.l1_overflow.needed == t.tile_bytes > tiling.l1_overflow.available
    assert "smallest tile" in str(tiling.l1_overflow)


def test_depthwise_tiles_channels_with_their_own_input(gap9):
    geo = ConvGeometry("DEPTHWISE_CONV_2D", 128, 128, 64, 128, 128, 64, 3, 3)
    la = conv_layer(geo, kind=LayerKind.DEPTHWISE_CONV)
    t = conv_tiles(gap9, la)
    assert t.fits and t.n_tiles > 1 and t.tile_bytes <= t.cap
    n_c, n_h = -(-64 // t.co_t), -(-128 // t.h_t)
    assert t.n_tiles == n_c * n_h
    # each channel tile reads only its channels' input: the input is read once (+ halos)
    assert t.l2_bytes == la.param_bytes + n_h * min(128, t.h_t + 2) * 128 * 64 + geo.outputs
