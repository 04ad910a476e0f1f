"""Speech quality of exported files: PESQ/STOI beside the float Keras model (docs/design.md §4 table).

:func:`validate_file` scores one ``.tflite`` (run frame by frame in LiteRT), the float
checkpoint it came from and the noisy input on a pairs folder.  :func:`quant_table`
exports one checkpoint at the settings of the quantization table of docs/design.md §4
(:data:`TABLE_ROWS`) and scores each.
Scoring is :func:`tfdenoise.evaluate.evaluate_pairs`.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from tfdenoise.errors import ModelError
from tfdenoise.modelref import require_checkpoint, resolve

from tfdenoise.converters.interpreter import TFLiteDenoiser

#: Rows of the quantization table of docs/design.md §4: (label, recipe, calibration statistic;
#: None: the recipe's).  ``int8_asym``: std3 with the never-negative tensors on [0, 2 r].
TABLE_ROWS = (("fp32", "fp32", None), ("fp16", "fp16", None),
              ("int8 (max)", "int8", "max"), ("int8 (std3)", "int8", "std3"),
              ("int8 (std3, asymmetric)", "int8_asym", None),
              ("mixed (max)", "mixed", "max"), ("mixed (std3)", "mixed", "std3"))


@dataclass(frozen=True)
class Row:
    """One scored model."""

    label: str
    pesq: float
    stoi: float
    param_mb: float | None = None
    param_bytes_at_bit_width: int | None = None   # with ``boards``: every integer weight at its width
    cost: dict | None = None                      # with ``boards``: board -> latency_ms, energy_uj


def _checkpoint(spec: str | os.PathLike | None) -> Path:
    """The float model a spec names: a checkpoint folder (the default model when ``None``) or a
    user's Keras model (a file or SavedModel folder, :mod:`tfdenoise.converters.keras_model`)."""
    ref = resolve(spec)
    return ref.path if ref.is_keras else require_checkpoint(ref, "the float reference").path


def _float_model(path: Path):
    """The float model of :func:`_checkpoint`'s path and its name: a TinyDenoiser checkpoint, or a
    user's Keras model that keeps the denoiser's I/O contract."""
    if resolve(path).is_keras:
        from tfdenoise.converters.keras_model import load_keras_model, streamable

        model = streamable(load_keras_model(path))
        return model, model.name
    from tfdenoise.models import load_checkpoint

    model = load_checkpoint(path)
    return model, model.variant.name


def validate_file(tflite: str | os.PathLike, pairs_dir: str | os.PathLike,
                  checkpoint: str | os.PathLike | None = None,
                  jobs: int | None = None, backend: str = "litert") -> dict:
    """Scores of ``tflite``, of the float ``checkpoint`` and of the noisy input."""
    from tfdenoise.evaluate import evaluate_pairs
    from tfdenoise.models import read_config

    meta = TFLiteDenoiser(tflite, backend=backend).metadata or {}
    ckpt = _checkpoint(checkpoint)
    if resolve(ckpt).is_keras:  # a user's model: its file carries the Keras model's name
        ck_variant = meta.get("variant") if meta.get("keras") else "keras model"
    else:
        ck_variant = str(read_config(ckpt).get("variant", "?")).lower()
    if meta.get("variant") and meta["variant"] != ck_variant:
        raise ModelError(f"the file is a {meta['variant'].upper()} but the checkpoint "
                         f"{ckpt} is a {ck_variant.upper()}; pass --checkpoint", tflite)
    lite = evaluate_pairs(pairs_dir, str(tflite), jobs=jobs, backend=backend)
    ref = evaluate_pairs(pairs_dir, str(ckpt), jobs=jobs)
    from tfdenoise.converters import fbgraph
    from tfdenoise.converters.convert import MB

    mb = fbgraph.param_bytes_by_layer(fbgraph.load(Path(tflite).read_bytes()))["*"] / MB
    rows = [Row("noisy", lite["noisy_mean"]["pesq"], lite["noisy_mean"]["stoi"]),
            Row("keras float", ref["mean"]["pesq"], ref["mean"]["stoi"]),
            Row(f"tflite {meta.get('precision', '?')}", lite["mean"]["pesq"],
                lite["mean"]["stoi"], round(mb, 4))]
    return {"model": str(tflite), "checkpoint": str(ckpt), "pairs": str(pairs_dir),
            "variant": meta.get("variant"), "precision": meta.get("precision"),
            "rows": [asdict(r) for r in rows], "files": lite["files"]}


def qat_label(info: dict) -> str:
    """Row label of a QAT checkpoint from its ``qat`` record: ``qat 8-bit, stage 2``, or the
    widths by layer group (``qat fc 8-bit, rnn 4-bit, stage 2``); a stage 2 with asymmetric
    ranges adds ``asymmetric``, and ``calibrated ranges`` where they were fixed."""
    bits = info.get("bits") or {}
    groups: dict[str, set[int]] = {}
    for layer, b in bits.items():
        groups.setdefault("rnn" if layer.startswith("rnn") else "fc", set()).add(int(b))
    every = {b for g in groups.values() for b in g}
    if len(every) == 1:
        widths = f"{every.pop()}-bit"
    else:
        widths = ", ".join(f"{g} {'/'.join(str(b) for b in sorted(v))}-bit" for g, v in sorted(groups.items()))
    extra = (", asymmetric" if info.get("act_ranges_kind") == "asymmetric" else "") + \
        (", calibrated ranges" if info.get("act_ranges_fixed") else "")
    return f"qat {widths}, stage {info.get('stage', '?')}{extra}"


def _qat_model(spec: str | os.PathLike, variant: str):
    """A QAT checkpoint of ``variant`` as every loader sees it (grid weights), and its row label."""
    model, name = _float_model(_checkpoint(spec))
    info = getattr(model, "qat_info", None)
    if not info:
        raise ModelError("not a QAT checkpoint (train it with --qat-bits)", spec)
    if name != variant:
        raise ModelError(f"the QAT checkpoint is a {name.upper()}, the table's model a "
                         f"{variant.upper()}", spec)
    return model, f"{qat_label(info)} ({Path(spec).parent.name if Path(spec).name in ('best', 'last') else Path(spec).name})"


def quant_table(checkpoint: str | os.PathLike | None, pairs_dir: str | os.PathLike,
                calib_dir: str | os.PathLike | None = None, jobs: int | None = None,
                workdir: str | os.PathLike | None = None,
                qat: Sequence[str | os.PathLike] = (), boards: Sequence[str] = ()) -> dict:
    """the quantization table of docs/design.md §4 for one model: one export per
    :data:`TABLE_ROWS` row, PESQ / STOI /
    parameter MB each; then one full-INT8 row per QAT checkpoint of the same variant in ``qat``
    (exported with its trained grid and, after stage 2, its trained activation ranges).
    ``boards``: each row also gets its parameter bytes at the trained widths and the modeled
    latency and energy per inference on each board (``tfdenoise report``'s model)."""
    from tfdenoise.converters.calibration import CalibrationSet
    from tfdenoise.converters.convert import export_model
    from tfdenoise.evaluate import evaluate_pairs
    from tfdenoise.targets.boards import load_board

    boards = tuple(load_board(b).name for b in boards)   # an unknown board fails before any work
    ckpt = _checkpoint(checkpoint)
    model, name = _float_model(ckpt)
    calib = CalibrationSet.load(calib_dir)
    jobs_ = [(model, label, recipe, method, re.sub(r"[^a-z0-9]+", "_", label).strip("_"))
             for label, recipe, method in TABLE_ROWS]
    jobs_ += [(*_qat_model(q, name), "int8", None, f"qat_{i}")      # checked before any work
              for i, q in enumerate(qat)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="tfdenoise-table-") as tmp:
        folder = Path(workdir) if workdir is not None else Path(tmp)
        noisy = None
        for net, label, recipe, method, stem in jobs_:
            res = export_model(net, folder / f"{name}_{stem}.tflite", recipe,
                               calib=calib, method=method, check=False)
            scores = evaluate_pairs(pairs_dir, str(res.path), jobs=jobs)
            noisy = scores["noisy_mean"]
            rows.append(Row(label, scores["mean"]["pesq"], scores["mean"]["stoi"],
                            round(res.param_mb, 4), *_costs(res.path, boards)))
    rows.append(Row("noisy", noisy["pesq"], noisy["stoi"]))
    return {"checkpoint": str(ckpt), "variant": name, "pairs": str(pairs_dir),
            "calibration_clips": calib.names, "qat": [str(q) for q in qat],
            "rows": [asdict(r) for r in rows]}


def _costs(path: Path, boards: Sequence[str]) -> tuple[int | None, dict | None]:
    """(parameter bytes at the trained widths, board -> modeled latency and energy) of a file."""
    if not boards:
        return None, None
    from tfdenoise.targets import analyze
    from tfdenoise.targets.report import to_json as report_json

    cost, at_width = {}, None
    for board in boards:
        j = report_json(analyze(path, board=board))
        at_width = j["param_bytes_at_bit_width"]
        cost[board] = {"latency_ms": j["latency_ms"], "energy_uj": j["energy_uj"]}
    return at_width, cost


def to_markdown(result: dict) -> str:
    """A Markdown table of ``result["rows"]`` (with cost columns when the rows have them)."""
    title = result.get("variant") or ""
    boards = list(next((r["cost"] for r in result["rows"] if r.get("cost")), {}))
    head = ["PESQ", "STOI", "parameters (MB)"] + (["at bit width (B)"] if boards else []) + \
        [f"{b} ms / uJ" for b in boards]
    lines = [f"| {title.upper()} | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    for r in result["rows"]:
        cells = [f"{r['pesq']:.3f}", f"{r['stoi']:.4f}",
                 "" if r.get("param_mb") is None else f"{r['param_mb']:.2f}"]
        if boards:
            cost = r.get("cost") or {}
            cells.append("" if r.get("param_bytes_at_bit_width") is None else f"{r['param_bytes_at_bit_width']:,}")
            cells += [f"{cost[b]['latency_ms']:.3f} / {cost[b]['energy_uj']:.1f}" if b in cost else "" for b in boards]
        lines.append(f"| {r['label']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def to_json(result: dict) -> str:
    return json.dumps(result, indent=2)
