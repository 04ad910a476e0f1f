"""Compare the Cortex-M cost model with every published whole-network latency we found.

    python tools/cortexm_validation.py [--measurements tools/cortexm_measurements.toml]
        [--cache runs/validation] [-o docs/boards.md] [--rebuild] [--json F|-]

For each measurement of ``tools/cortexm_measurements.toml`` (MLPerf Tiny results on the
NUCLEO-L4R5ZI / DISCO-F746NG / NUCLEO-H7A3ZI-Q, the STM32F7 KWS system, a Cortex-A53 figure):
rebuild its network as a tf_keras model (tools/cortexm_nets.py), convert it to the measured
precision (INT8 full integer, representative dataset = 16 seeded random inputs; FP32 plain;
keyword-spotting networks through ``tfdenoise.converters.kws_convert.convert_kws`` so that their
feature frame is priced too), cache the ``.tflite`` under ``--cache``, run the cost model
(``tfdenoise.targets.pipeline.analyze_graph``) on the board file that models the device, at the
measurement's clock, and compare: ratio = modeled / measured (``metric = inference``: the
report's ``latency_ms``; ``metric = decision``: its ``decision_ms``, network + one feature frame).

Writes ``-o`` (docs/boards.md) atomically: the MAC check (hand count vs the Keras model vs the
converted file vs the published figure), then one section per board: the comparison table, the
geometric-mean ratio per engine class, and one line per board constant with its source.
Weights are random: latencies do not depend on them (dense kernels, no sparsity).
"""
from __future__ import annotations

import argparse
import math
import sys
import tomllib
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cortexm_nets import NETS, Net, keras_macs  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MEASUREMENTS = ROOT / "tools" / "cortexm_measurements.toml"
FIELDS = ("network", "precision", "device", "freq_mhz", "engine", "engine_class", "measured_ms",
          "metric", "read", "source")
PRECISIONS = ("int8", "fp32")
METRICS = ("inference", "decision")
CALIB_SAMPLES = 16
KWS_NETS = {"mlperf_kws": ("dscnn", 12), "wang_li_cnn": ("cnn", 6)}


@dataclass(frozen=True)
class Measurement:
    network: str
    precision: str
    device: str
    freq_mhz: float
    engine: str
    engine_class: str
    measured_ms: float
    metric: str
    read: str
    source: str
    board: str = ""
    device_note: str = ""


@dataclass(frozen=True)
class Row:
    m: Measurement
    modeled_ms: float | None     # None: the board file does not exist
    problem: str = ""

    @property
    def ratio(self) -> float | None:
        return None if self.modeled_ms is None else self.modeled_ms / self.m.measured_ms


def load_measurements(path: str | Path) -> list[Measurement]:
    """The measurements of ``path`` with their device's board; one clear error per bad entry."""
    from tfdenoise.errors import InputError

    try:
        raw = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"cannot read the measurements ({exc})", path) from None
    devices = raw.get("devices", {})
    out = []
    for i, e in enumerate(raw.get("measurement", [])):
        missing = [f for f in FIELDS if f not in e]
        where = f"measurement {i + 1}"
        if missing:
            raise InputError(f"{where} lacks {', '.join(missing)}", path)
        if e["network"] not in NETS or e["precision"] not in PRECISIONS or e["metric"] not in METRICS:
            raise InputError(f"{where}: unknown network, precision or metric", path)
        if e["device"] not in devices or not float(e["measured_ms"]) > 0 or not float(e["freq_mhz"]) > 0:
            raise InputError(f"{where}: device not in [devices], or a non-positive number", path)
        if not devices[e["device"]].get("board"):
            raise InputError(f"{where}: device {e['device']} names no board", path)
        board, note = resolve_board(devices[e["device"]])
        out.append(Measurement(**{f: e[f] for f in FIELDS}, board=board, device_note=note))
    if not out:
        raise InputError("no [[measurement]] entries", path)
    return out


def resolve_board(device: dict) -> tuple[str, str]:
    """The first board file of ``device["board"]`` (a name or a list of names) that exists (else
    the first name, reported as not modelled), and the device note naming the one used."""
    from tfdenoise.targets.boards import available_boards

    names = device.get("board", [])
    names = [names] if isinstance(names, str) else list(names)
    if not names:
        return "", device.get("note", "")
    board = next((n for n in names if n in available_boards()), names[0])
    return board, f"{device.get('note', '')} (modelled by {board})"


# -- conversion ---------------------------------------------------------------------------------

def _random_inputs(shape: tuple[int, ...], n: int = CALIB_SAMPLES):
    import numpy as np

    rng = np.random.default_rng(0)
    return rng.normal(0.0, 1.0, (n, *shape)).astype(np.float32)


def _batch1(model, shape: tuple[int, ...]):
    from tfdenoise.keras import keras

    inp = keras.Input(shape, batch_size=1)
    return keras.Model(inp, model(inp), name=model.name)


def convert(net: Net, precision: str) -> bytes:
    """The ``.tflite`` bytes of ``net`` at ``precision`` (random weights, random calibration)."""
    if net.key in KWS_NETS:
        from tfdenoise.converters.kws_convert import convert_kws
        from tfdenoise.kws.models import KwsModel

        name, classes = KWS_NETS[net.key]
        model = KwsModel(name, classes, seed=0)
        windows = _random_inputs(tuple(model.spec.input_shape)) if precision == "int8" else None
        return convert_kws(model, precision, windows, random_weights=True,
                           calib_source="random normal inputs (tools/cortexm_validation.py)")
    from tfdenoise.keras import tf
    from tfdenoise.quiet import native_stderr_muted

    conv = tf.lite.TFLiteConverter.from_keras_model(_batch1(net.build(), net.input_shape))
    if precision == "int8":
        data = _random_inputs(net.input_shape)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([x[None]] for x in data)
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    with warnings.catch_warnings(), native_stderr_muted():
        warnings.filterwarnings("ignore", message=".*Statistics for quantized inputs")
        return bytes(conv.convert())


def cached_tflite(net: Net, precision: str, cache: Path, rebuild: bool) -> Path:
    from tfdenoise.fileio import write_bytes

    path = cache / f"{net.key}_{precision}.tflite"
    if rebuild or not path.is_file():
        print(f"  converting {net.key} ({precision}) -> {path}", file=sys.stderr)
        write_bytes(path, convert(net, precision))
    return path


# -- the cost model -----------------------------------------------------------------------------

def board_at(name: str, freq_mhz: float):
    """Board ``name`` with one operating point at ``freq_mhz`` (its first point's supply), or
    None when no such board file exists."""
    from tfdenoise.targets.boards import available_boards, load_board
    from tfdenoise.targets.types import OperatingPoint

    if name not in available_boards():
        return None
    board = load_board(name)
    vdd = board.operating_points[0].vdd
    return replace(board, operating_points=(OperatingPoint(vdd, float(freq_mhz)),))


def model_rows(ms: list[Measurement], cache: Path, rebuild: bool) -> tuple[list[Row], dict]:
    """One Row per measurement, and the converted file's MAC count per network."""
    from tfdenoise.targets.layers import group_layers
    from tfdenoise.targets.pipeline import analyze_graph
    from tfdenoise.targets.reader import read_tflite

    reports, file_macs, rows = {}, {}, []
    for m in ms:
        graph = read_tflite(cached_tflite(NETS[m.network], m.precision, cache, rebuild))
        if m.network not in file_macs:
            file_macs[m.network] = kind_macs(group_layers(graph)[0])
        board = board_at(m.board, m.freq_mhz)
        if board is None:
            rows.append(Row(m, None, f"no board file {m.board}.toml"))
            continue
        key = (m.network, m.precision, m.board, m.freq_mhz)
        if key not in reports:
            reports[key] = analyze_graph(graph, board)
        r = reports[key]
        rows.append(Row(m, r.decision_ms if m.metric == "decision" else r.schedule.latency_ms))
    return rows, file_macs


def kind_macs(layers) -> dict[str, int]:
    """MACs of the cost model's layers by kind (conv, depthwise_conv, dense, ...)."""
    out: dict[str, int] = {}
    for la in layers:
        if la.macs:
            out[str(la.kind)] = out.get(str(la.kind), 0) + int(la.macs)   # StrEnum or str
    return out


def mac_check(file_macs: dict) -> list[dict]:
    """Hand count, Keras count, converted-file count (and its split by layer kind) and the
    published figure of each network."""
    out = []
    for key, by_kind in file_macs.items():
        net = NETS[key]
        out.append({"network": key, "title": net.title, "hand": net.hand_macs(),
                    "keras": keras_macs(net.build()), "tflite": sum(by_kind.values()),
                    "tflite_by_kind": by_kind,
                    "published": net.published_macs, "published_source": net.published_source,
                    "published_tolerance": net.published_tolerance})
    return out


def geo_mean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


# -- output -------------------------------------------------------------------------------------

def _fmt(x: float | None, nd: int = 2) -> str:
    return "-" if x is None else f"{x:,.{nd}f}"


def mac_markdown(check: list[dict]) -> list[str]:
    lines = ["## MAC check: rebuilt networks", "",
             "Hand count (formula on the published layer list, tools/cortexm_nets.py), the Keras "
             "model's count (its built layers), the converted `.tflite` as the cost model reads it, "
             "and the figure a source states (within its rounding).", "",
             "| network | hand | Keras | .tflite | .tflite by layer kind | published | agrees |",
             "|---|---|---|---|---|---|---|"]
    for c in check:
        pub = "-" if c["published"] is None else f"{c['published']:,} ({c['published_source']})"
        same = c["hand"] == c["keras"] == c["tflite"]
        ok = NETS[c["network"]].matches_published(c["hand"])
        agrees = ("yes" if same else "NO") + ("" if ok is None else ", published " + ("yes" if ok else "NO"))
        split = ", ".join(f"{k} {100 * v / c['tflite']:.1f} %"
                          for k, v in sorted(c["tflite_by_kind"].items()))
        lines.append(f"| {c['title']} | {c['hand']:,} | {c['keras']:,} | {c['tflite']:,} | {split} "
                     f"| {pub} | {agrees} |")
    return lines + [""]


def _short_source(s: str) -> str:
    return s.split(" (median")[0]


def board_markdown(board: str, rows: list[Row]) -> list[str]:
    from tfdenoise.targets.boards import load_board

    devices = sorted({(r.m.device, r.m.device_note) for r in rows})
    lines = [f"## {board}", ""] + [f"- {d}: {note}" for d, note in devices] + [""]
    if rows[0].modeled_ms is None:
        return lines + [f"Not modelled: {rows[0].problem}. Measurements waiting for it:", "",
                        "| network | device @ MHz | engine | read | source | measured ms |",
                        "|---|---|---|---|---|---|"] + [
            f"| {r.m.network} | {r.m.device} @ {r.m.freq_mhz:g} | {r.m.engine} | {r.m.read} | "
            f"{_short_source(r.m.source)} | {r.m.measured_ms:g} |" for r in rows] + [""]
    lines += ["| network | prec. | device @ MHz | engine (class) | read | source | measured ms | "
              "modeled ms | modeled / measured |", "|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r.m.device, r.m.network, r.m.engine_class, r.m.measured_ms)):
        m = r.m
        lines.append(f"| {m.network} ({m.metric}) | {m.precision} | {m.device} @ {m.freq_mhz:g} | "
                     f"{m.engine} ({m.engine_class}) | {m.read} | {_short_source(m.source)} | "
                     f"{m.measured_ms:g} | {_fmt(r.modeled_ms)} | {_fmt(r.ratio, 3)} |")
    lines += ["", "Geometric mean of modeled / measured per device, network and engine class:", "",
              "| device | network | engine class | n | geo-mean ratio |", "|---|---|---|---|---|"]
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        groups.setdefault((r.m.device, r.m.network, r.m.engine_class), []).append(r.ratio)
    for (dev, net, cls), vals in sorted(groups.items()):
        lines.append(f"| {dev} | {net} | {cls} | {len(vals)} | {geo_mean(vals):.3f} |")
    b = load_board(board)
    n_assumed = sum(c.source.startswith("assumption") for c in b.constants.values())
    lines += ["", f"Constants of `targets/boards/{board}.toml` (inherits resolved): {len(b.constants)}, "
              f"{n_assumed} of them still 'assumption'.", ""]
    lines += [f"- `{k}` = {c.value} {c.unit}: {c.source}" for k, c in sorted(b.constants.items())]
    return lines + [""]


def markdown(rows: list[Row], check: list[dict], measurements: Path) -> str:
    shown = measurements.relative_to(ROOT) if measurements.is_relative_to(ROOT) else measurements
    lines = ["# Boards: the cost model against published measurements", "",
             "Generated by `python tools/cortexm_validation.py` (do not edit by hand): every "
             f"measurement of `{shown}` "
             "(published whole-network latencies, each with its source; READ = read in the source "
             "by us, 2ND = quoted by a third party), its network rebuilt in tf_keras and converted "
             "to the measured precision (random weights and calibration inputs; latency does not "
             "depend on them), modelled by `tfdenoise.targets` on the board file that models the "
             "device, at the measurement's clock. ratio = modeled / measured: above 1 the model is "
             "slower than the silicon. 'inference' compares the report's latency_ms, 'decision' its "
             "decision_ms (network + one feature frame).", "",
             "Engine classes: tflm+cmsis-nn (TFLite Micro with CMSIS-NN kernels, the model's "
             "reference), cmsis-nn (another front end over CMSIS-NN), native (compiler-generated "
             "kernels), vendor (X-CUBE-AI, Plumerai, Bosch HALE, ONNC: own kernels, faster than "
             "CMSIS-NN), hand-written, tflite-cpu.", ""]
    lines += mac_markdown(check)
    by_board: dict[str, list[Row]] = {}
    for r in rows:
        by_board.setdefault(r.m.board, []).append(r)
    for board in sorted(by_board, key=lambda b: by_board[b][0].modeled_ms is None):
        lines += board_markdown(board, by_board[board])
    return "\n".join(lines).rstrip() + "\n"


def to_json(rows: list[Row], check: list[dict]) -> dict:
    return {"macs": check, "rows": [{**{f: getattr(r.m, f) for f in FIELDS}, "board": r.m.board,
                                     "modeled_ms": r.modeled_ms, "ratio": r.ratio,
                                     "problem": r.problem} for r in rows]}


def main(argv: list[str] | None = None) -> int:
    from tfdenoise.commands._common import add_json, emit_json, human, json_files
    from tfdenoise.errors import TfdenoiseError
    from tfdenoise.fileio import check_outputs, write_text

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--measurements", default=str(DEFAULT_MEASUREMENTS), help="the measurements (TOML)")
    p.add_argument("--cache", default=str(ROOT / "runs" / "validation"), help="converted .tflite files")
    p.add_argument("-o", "--out", default=str(ROOT / "docs" / "boards.md"), help="the Markdown written")
    p.add_argument("--rebuild", action="store_true", help="convert again even when cached")
    add_json(p, "the rows and the MAC check")
    a = p.parse_args(argv)
    try:
        ms = load_measurements(a.measurements)
        check_outputs([a.out, *json_files(a.json)], [a.cache], inputs=[a.measurements])
        rows, file_macs = model_rows(ms, Path(a.cache), a.rebuild)
        check = mac_check(file_macs)
        write_text(a.out, markdown(rows, check, Path(a.measurements).resolve()))
    except TfdenoiseError as exc:
        print(f"cortexm_validation: {exc}", file=sys.stderr)
        return 2
    out = human(a.json)
    for c in check:
        print(f"MACs {c['network']}: hand {c['hand']:,}  keras {c['keras']:,}  tflite {c['tflite']:,}"
              f"  published {c['published'] if c['published'] is None else format(c['published'], ',')}",
              file=out)
    print("network | board | clock | source | measured ms | modeled ms | ratio", file=out)
    for r in rows:
        print(f"{r.m.network} | {r.m.board} | {r.m.freq_mhz:g} MHz | {r.m.engine} | {r.m.measured_ms:g} | "
              f"{_fmt(r.modeled_ms)} | {_fmt(r.ratio, 3)}{' (' + r.problem + ')' if r.problem else ''}",
              file=out)
    print(f"wrote {a.out}", file=out)
    emit_json(to_json(rows, check), a.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
