"""Conv / depthwise / pooling geometry read from the tensors of a real .tflite (targets/geometry.py)."""
from __future__ import annotations

from tfdenoise.targets.layers import group_layers
from tfdenoise.targets.reader import read_tflite
from tfdenoise.vocab import LayerKind


def _by_kind(tflite_dir, name):
    layers, _ = group_layers(read_tflite(tflite_dir / f"{name}.tflite"))
    return {la.kind: la for la in layers if la.geometry is not None}, layers


def test_conv_depthwise_pool_shapes(tflite_dir):
    # foreign model: Conv2D(8, 3, same) on 16x16x3 -> DepthwiseConv2D(3, same) -> MaxPool(2) -> AvgPool(2)
    for name in ("foreign_int8", "foreign_fp32"):
        geo, layers = _by_kind(tflite_dir, name)
        conv, dw = geo[LayerKind.CONV].geometry, geo[LayerKind.DEPTHWISE_CONV].geometry
        assert (conv.in_h, conv.in_w, conv.in_ch, conv.out_h, conv.out_w, conv.out_ch, conv.k_h, conv.k_w) == \
            (16, 16, 3, 16, 16, 8, 3, 3)
        assert conv.patch == 27 and conv.outputs == 16 * 16 * 8
        assert (dw.in_ch, dw.out_ch, dw.k_h, dw.k_w, dw.patch) == (8, 8, 3, 3, 9)
        # hand count: MACs of a conv layer = outputs x patch
        assert geo[LayerKind.CONV].macs == conv.outputs * conv.patch
        assert geo[LayerKind.DEPTHWISE_CONV].macs == dw.outputs * dw.patch
        pools = [la.geometry for la in layers if la.kind == LayerKind.POOL]
        assert [(p.in_h, p.out_h, p.k_h, p.k_w) for p in pools] == [(16, 8, 2, 2), (8, 4, 2, 2)]


def test_dense_and_rnn_layers_have_no_geometry(tflite_dir):
    layers, _ = group_layers(read_tflite(tflite_dir / "lstm_int8.tflite"))
    assert layers and all(la.geometry is None for la in layers)
