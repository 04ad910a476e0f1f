"""Modeled latency of a dynamic-range (hybrid) LSTM128 beside its INT8, mixed and FP32 forms.

Usage: .venv/bin/python benchmarks/hybrid_report.py [CHECKPOINT]

Builds, in a temporary folder, three files of the shipped trained LSTM128 (or CHECKPOINT):
the stock converter's dynamic-range quantization (``Optimize.DEFAULT``, no representative
dataset: INT8 weights, FP32 activations), our full-INT8 export and our FP32 export; takes our
mixed FP16-INT8 export from the shipped ``lstm128_mixed_max.tflite``. Prints the modeled
latency on gap9 (both operating points) and stm32f746, "before" and "after" side by side:

* before: the classification targets/layers.py made until hybrid layers existed (INT8
  weights -> ``int8`` layer, priced as an INT8 kernel with 1-byte activations), reproduced
  by relabelling the hybrid layers ``int8`` before the rest of the pipeline runs;
* after: the current model (``hybrid``: float MACs + per-weight conversion, 4-byte
  activations; docs/design.md §4).

Takes about 40 s on a 2-core machine (three conversions).
"""
from __future__ import annotations

import dataclasses
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tfdenoise.targets import analyze, pipeline  # noqa: E402
from tfdenoise.vocab import Precision  # noqa: E402

#: (board, vdd) columns; vdd None = the board's default (first) operating point.
POINTS = (("gap9", 0.8), ("gap9", 0.65), ("stm32f746", None))


@contextmanager
def before_fix():
    """Price hybrid layers as the old classification did: INT8 kernels."""
    original = pipeline.group_layers

    def as_int8(graph):
        layers, warnings = original(graph)
        layers = tuple(dataclasses.replace(la, precision=Precision.INT8, dequant_elems=0)
                       if la.precision == Precision.HYBRID else la for la in layers)
        return layers, tuple(w for w in warnings if "dynamic-range" not in w)

    pipeline.group_layers = as_int8
    try:
        yield
    finally:
        pipeline.group_layers = original


def build_files(checkpoint: Path, folder: Path) -> dict[str, Path]:
    """name -> .tflite path: dynamic-range, full INT8, FP32 (built here) and mixed (shipped)."""
    from tfdenoise.converters import export
    from tfdenoise.converters.build import ConverterFactory
    from tfdenoise.keras import tf
    from tfdenoise.models import load_checkpoint
    from tfdenoise.pretrained import tflite

    factory = ConverterFactory(load_checkpoint(checkpoint))
    try:
        conv = factory()
        conv.optimizations = [tf.lite.Optimize.DEFAULT]   # no representative dataset
        dynamic = folder / "dynamic_range.tflite"
        dynamic.write_bytes(conv.convert())
    finally:
        factory.close()
    files = {"dynamic-range (stock)": dynamic}
    for precision in ("int8", "fp32"):
        out = folder / f"{precision}.tflite"
        export(str(checkpoint), precision, out, check=False)
        files[f"{precision} (ours)"] = out
    files["mixed (ours, shipped)"] = tflite("lstm128", "mixed")
    return files


def latency(path: Path, board: str, vdd: float | None) -> tuple[float, str]:
    report = analyze(path, board=board, vdd=vdd)
    precisions = sorted({str(la.precision) for la in report.layers if la.macs})
    return report.schedule.latency_ms, "/".join(precisions)


def main(argv: list[str]) -> int:
    from tfdenoise.pretrained import checkpoint

    ckpt = Path(argv[0]) if argv else checkpoint("lstm128")
    with tempfile.TemporaryDirectory(prefix="tfdenoise-hybrid-") as tmp:
        files = build_files(ckpt, Path(tmp))
        rows = []
        for name, path in files.items():
            with before_fix():
                before = [latency(path, b, v) for b, v in POINTS]
            after = [latency(path, b, v) for b, v in POINTS]
            rows.append((name, before, after))
    head = [f"{b} {v or 'default'}{' V' if v else ''}" for b, v in POINTS]
    print(f"LSTM128 ({ckpt}): modeled latency in ms, before -> after")
    print(f"{'model':24} {'MAC layers (after)':18} " + " ".join(f"{h:>20}" for h in head))
    for name, before, after in rows:
        cells = " ".join(f"{b[0]:8.3f} -> {a[0]:7.3f}" for b, a in zip(before, after))
        print(f"{name:24} {after[0][1]:18} {cells}")
    dyn = next(r for r in rows if r[0].startswith("dynamic"))
    fp32 = next(r for r in rows if r[0].startswith("fp32"))
    int8 = next(r for r in rows if r[0].startswith("int8"))
    mixed = next(r for r in rows if r[0].startswith("mixed"))
    for i, (b, v) in enumerate(POINTS):
        d, f, q, m = dyn[2][i][0], fp32[2][i][0], int8[2][i][0], mixed[2][i][0]
        print(f"{b} {v or 'default'}: dynamic-range / full-INT8 = {d / q:.2f}x, / mixed = {d / m:.2f}x, "
              f"/ fp32 = {d / f:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
