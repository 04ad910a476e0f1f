"""Modeled cost of CNN models on every board: the 8-core GAP9 kernels and their validation.

Usage: .venv/bin/python benchmarks/cnn_report.py [--mobilenet] [--json F]

Builds, in a temporary folder (RANDOM weights: costs only, no accuracy):

* ``foreign``: the CNN fixture of tests/targets/conftest.py (Conv2D 8 x 3x3 on 16x16x3,
  DepthwiseConv2D 3x3, MaxPool 2, AvgPool 2, Dense 10, Softmax), INT8 and FP32;
* ``dscnn``: the MLPerf-Tiny-like DS-CNN of ``tfdenoise kws models`` (49 x 10 MFCC, 64
  channels, 12 classes as MLPerf Tiny), exported by tfdenoise.converters.kws (full INT8,
  metadata ``random_weights``), so its report includes the MFCC front end per 20 ms hop;
* ``mobilenet`` (``--mobilenet``, about 1 min more): 1.0-MobileNetV1 at 128 x 128, INT8, for
  the DORY GAP8 end-to-end figure.

Prints, per model and board: latency, MAC/cycle, the layers still priced by the generic
estimate, and the published whole-network figures this model is compared with (ratio =
modeled / published). Published figures (named, not fitted):

* GAP9, MLPerf Tiny v1.0 KWS (DS-CNN), GreenWaves closed submission
  (github.com/mlcommons/tiny_results_v1.0, closed/greenwaves-technologies/results/
  gap9_800_370 and gap9_650_240/keyword_spotting/performance): 2103.2 inf/s at 370 MHz
  (0.4755 ms, 175.9 k cycles), 1365.0 inf/s at 240 MHz (0.7326 ms). That submission runs
  layers 5+ on the NE16 neural engine with 5-bit weights (its nntool_script_ne16,
  ``qtune --step 5:-1 use_ne16=true``, W_BITS = 5): an accelerator, not the 8 cores this
  model prices, so the ratio bounds the cluster-only model from above, it does not validate it.
* PULP-NN (Garofalo et al. 2020, arXiv 1908.11263): up to 15.5 MAC/cycle INT8 on 8 cores,
  beside the gap9 conv kernel alone on a 3x3 conv (kernel_ceiling).
* GAP8, DORY (Burrello et al. 2021, arXiv 2008.07127): 1.0-MobileNetV1-128 end to end at
  4.3 fps (abstract); the README of github.com/pulp-platform/dory profiles that network with
  the cluster at 100 MHz (Fig. 2), taken here as the clock of the 4.3 fps (an inference, not a
  stated pairing): 186 M MACs / (100 MHz / 4.3 fps) = 8.0 MAC/cycle, 8 cores,
  weights streamed from the external HyperRAM. GAP8's cluster runs the same 4-way INT8
  SIMD dot product as GAP9's (PULP-NN kernels), with 64 kB L1: compared in MAC/cycle.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from tfdenoise.targets import analyze  # noqa: E402

BOARDS = (("gap9", 0.8), ("gap9", 0.65), ("gap9_flash", 0.8), ("stm32f746", None), ("stm32f767", None))
#: name -> (board, vdd, published ms or None, published MAC/cycle or None, what)
PUBLISHED = {
    "dscnn": [("gap9", 0.8, 0.4755, None, "GAP9 MLPerf Tiny v1.0 KWS (NE16 accelerator, 5-bit weights)"),
              ("gap9", 0.65, 0.7326, None, "GAP9 MLPerf Tiny v1.0 KWS @ 0.65 V (NE16 accelerator)")],
    "mobilenet": [("gap9_flash", 0.8, None, 8.0, "GAP8 DORY 1.0-MobileNetV1-128, 8 cores, MAC/cycle "
                                                  "(4.2 MB of weights: external flash, as GAP8's HyperRAM)")],
}


def _foreign(folder: Path) -> dict[str, Path]:
    import tensorflow as tf
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    img = keras.Input(batch_shape=(1, 16, 16, 3))
    z = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(img)
    z = keras.layers.DepthwiseConv2D(3, padding="same")(z)
    z = keras.layers.MaxPooling2D(2)(z)
    z = keras.layers.AveragePooling2D(2)(z)
    z = keras.layers.Flatten()(z)
    z = keras.layers.Dense(10)(z)
    z = keras.layers.Softmax()(z)
    model = keras.Model(img, z)
    return {"foreign_int8": _convert(tf, model, (1, 16, 16, 3), folder / "foreign_int8.tflite", strict=False),
            "foreign_fp32": _convert(tf, model, (1, 16, 16, 3), folder / "foreign_fp32.tflite", int8=False)}


def _mobilenet(folder: Path) -> dict[str, Path]:
    import tensorflow as tf
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    m = keras.applications.MobileNet(input_shape=(128, 128, 3), alpha=1.0, weights=None, classes=1000)
    return {"mobilenet": _convert(tf, m, (1, 128, 128, 3), folder / "mobilenet.tflite")}


def _convert(tf, model, shape, out: Path, int8: bool = True, strict: bool = True) -> Path:
    """INT8 as the test fixture converts it (float in/out) or, ``strict``, int8 in/out only."""
    c = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:
        rng = np.random.default_rng(0)
        c.optimizations = [tf.lite.Optimize.DEFAULT]
        c.representative_dataset = lambda: ([rng.random(shape).astype(np.float32)] for _ in range(4))
        if strict:
            c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            c.inference_input_type = c.inference_output_type = tf.int8
    out.write_bytes(c.convert())
    return out


def _dscnn(folder: Path) -> dict[str, Path]:
    from tfdenoise.converters.kws import export_kws
    from tfdenoise.kws.models import KwsModel

    model = KwsModel("dscnn", n_classes=12, seed=0)
    rng = np.random.default_rng(0)
    windows = rng.normal(size=(16, *model.spec.input_shape)).astype(np.float32)
    res = export_kws(model, folder / "dscnn_int8.tflite", "int8", windows, check=False,
                     random_weights=True, calib_source="random normal windows (benchmark)")
    return {"dscnn": res.path}


def rows(files: dict[str, Path]) -> list[dict]:
    out = []
    for name, path in files.items():
        for board, vdd in BOARDS:
            r = analyze(path, board=board, vdd=vdd)
            s = r.schedule
            out.append({"model": name, "board": board, "vdd": r.op.vdd, "macs": s.macs, "l3": r.memory.l3,
                        "latency_ms": round(s.latency_ms, 4), "mac_per_cycle": round(s.mac_per_cycle, 3),
                        "cycles": s.total_cycles, "decision_ms": round(r.decision_ms, 4),
                        "estimates": [t.name for t in s.layers if t.estimate],
                        "fits": r.fits})
    return out


def compare(table: list[dict]) -> list[dict]:
    """Modeled / published for each named whole-network figure."""
    out = []
    for name, items in PUBLISHED.items():
        for board, vdd, ms, mpc, what in items:
            row = next((r for r in table if r["model"] == name and r["board"] == board and r["vdd"] == vdd), None)
            if row is None:
                continue
            if ms is not None:
                out.append({"model": name, "what": what, "published": f"{ms} ms",
                            "modeled": f"{row['latency_ms']} ms", "ratio": round(row["latency_ms"] / ms, 2)})
            else:
                out.append({"model": name, "what": what, "published": f"{mpc} MAC/cycle",
                            "modeled": f"{row['mac_per_cycle']} MAC/cycle", "ratio": round(row["mac_per_cycle"] / mpc, 2)})
    return out


def kernel_ceiling() -> dict:
    """MAC/cycle of the gap9 conv kernel alone (no layer / tile overhead, operands in L1) for a
    3x3 conv 16x16x32 -> 64, beside PULP-NN's published INT8 peak of 15.5 MAC/cycle on 8 cores
    (Garofalo et al. 2020, abstract; the paper's layer shape is not reproduced here)."""
    from tfdenoise.targets import cnn_kernels
    from tfdenoise.targets.boards import load_board
    from tfdenoise.targets.types import ConvGeometry, Layer
    from tfdenoise.vocab import LayerKind, Precision

    geo = ConvGeometry("CONV_2D", 16, 16, 32, 16, 16, 64, 3, 3)
    layer = Layer(0, "conv", LayerKind.CONV, Precision.INT8, (0,), geo.outputs * geo.patch, (), (), (),
                  geo.in_h * geo.in_w * geo.in_ch, geo.outputs, geometry=geo)
    mpc = layer.macs / cnn_kernels.conv_cycles(load_board("gap9"), layer)
    return {"model": "conv 3x3 16x16x32->64 (kernel only)", "what": "PULP-NN INT8 peak, 8 cores",
            "published": "15.5 MAC/cycle", "modeled": f"{mpc:.2f} MAC/cycle", "ratio": round(mpc / 15.5, 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mobilenet", action="store_true", help="also 1.0-MobileNetV1-128 (DORY GAP8 figure)")
    ap.add_argument("--json", default=None, help="write the table as JSON to this file")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = {**_foreign(folder), **_dscnn(folder), **(_mobilenet(folder) if args.mobilenet else {})}
        table = rows(files)
    for r in table:
        est = ", ".join(r["estimates"]) or "-"
        print(f"{r['model']:13} {r['board']:10} {r['vdd']:>4} V {r['macs']:>11,} MACs {r['latency_ms']:9.4f} ms "
              f"{r['mac_per_cycle']:6.2f} MAC/cycle  decision {r['decision_ms']:8.4f} ms  "
              f"{'fits' if r['fits'] else 'DOES NOT FIT'}  generic estimate: {est}")
    cmp = compare(table) + [kernel_ceiling()]
    for c in cmp:
        print(f"{c['model']:10} {c['what']}: published {c['published']}, modeled {c['modeled']}, "
              f"ratio {c['ratio']}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": table, "published": cmp}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
