"""Print the tables of docs/pruning.md from what tools/recipes/prune.sh wrote under runs/prune/.

Every number comes from a JSON file one command wrote (named in each table's caption): the
``tfdenoise prune --json`` record and the checkpoint's history, ``tfdenoise kws evaluate --json``,
``tfdenoise export --json``, ``tfdenoise evaluate --json``, ``tfdenoise report --json``; the
zeros of each INT8 ``.tflite`` are read back from the file by ``tfdenoise.targets.sparsity``.

    .venv/bin/python tools/prune_tables.py [--runs runs/prune] [--kws-models dnn cnn]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

KWS_ROWS = (("dense", "-", "-"), ("u50", "unstructured", "0.5"), ("u75", "unstructured", "0.75"),
            ("m24", "2:4", "0.5"), ("s50", "structured", "0.5"))


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def tflite_zeros(path: Path) -> tuple[float, float] | None:
    """Share of zero weights in the weight tensors of a ``.tflite`` and share of their groups of
    4 along the input axis with at most 2 nonzeros (2:4-compliant), read by targets.sparsity."""
    if not path.is_file():
        return None
    from tfdenoise.targets.layers import group_layers
    from tfdenoise.targets.reader import read_tflite
    from tfdenoise.targets.sparsity import model_sparsity

    graph = read_tflite(path)
    tensors = [t for s in model_sparsity(graph, group_layers(graph)[0]).values() for t in s.tensors]
    return (sum(t.zeros for t in tensors) / sum(t.elements for t in tensors),
            sum(t.mn_ok for t in tensors) / sum(t.mn_groups for t in tensors))


def _epochs(run: Path) -> str:
    """``"20 (best 18)"`` of a run folder."""
    history = _load(run / "history.json") or []
    best = _load(run / "best" / "config.json") or {}
    return f"{len(history)} (best {best.get('epoch', '?')})" if history else "-"


def _weights(record: dict | None) -> str:
    """Nonzero kernel weights of a pruning record (``-`` for the dense model)."""
    if not record:
        return "-"
    if "weights_after" in record:
        return f"{record['weights_after']:,} of {record['weights_before']:,}"
    return f"{record['weights'] - record['zeros']:,} of {record['weights']:,}"


def _pct(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{100 * x:.{digits}f} %"


def kws_table(runs: Path, model: str) -> str:
    lines = ["| model | method | target | kernel weights left (nonzero) | zeros in the INT8 file | "
             "2:4-compliant groups in the INT8 file | "
             "fine-tuning epochs | test accuracy (Keras) | FRR at 1 FA/h (Keras) | test accuracy (INT8) | "
             "INT8 file bytes | INT8 .tflite |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for tag, method, target in KWS_ROWS:
        stem = runs / f"kws_{model}_{tag}"
        ev, ev8 = _load(Path(f"{stem}.eval.json")), _load(Path(f"{stem}.int8.eval.json"))
        if ev is None:
            continue
        prune = (_load(Path(f"{stem}.prune.json")) or {}).get("prune")
        tfl = Path(f"{stem}.int8.tflite")
        frr = (ev.get("det") or {}).get("frr_at_fa_per_hour", {}).get("1")
        size = (_load(Path(f"{stem}.export.json")) or {}).get("file_bytes")
        zeros, mn_ok = tflite_zeros(tfl) or (None, None)
        lines.append(f"| {model} | {method} | {target} | {_weights(prune)} | {_pct(zeros, 1)} | {_pct(mn_ok, 1)} | "
                     f"{_epochs(stem) if tag != 'dense' else '-'} | {_pct(ev['accuracy'])} | {_pct(frr, 1)} | "
                     f"{_pct(ev8['accuracy'] if ev8 else None)} | {size or 0:,} | `{tfl}` |")
    return "\n".join(lines)


def strategy_table(runs: Path, model: str) -> str:
    """Latency per inference (ms) of each INT8 KWS model under every loop strategy and code
    precision on the STM32F767 (``tfdenoise report --strategy all --json``), speed-up over dense."""
    rows = []
    for tag, method, target in KWS_ROWS:
        rec = (_load(runs / f"kws_{model}_{tag}.strategies.json") or {}).get("strategies")
        if rec:
            rows.append((f"{method} {target}" if tag != "dense" else "dense (shipped)", rec))
    if not rows:
        return ""
    cols = [(s, p) for p in rows[0][1]["precisions"] for s in rows[0][1]["strategies"]]
    lines = ["| model | " + " | ".join(f"{s} {p}" for s, p in cols) + " |", "|---|" + "---|" * len(cols)]
    for label, rec in rows:
        cell = {(t["strategy"], t["precision"]): t for t in rec["totals"]}
        lines.append(f"| {model} {label} | " + " | ".join(
            f"{cell[c]['latency_ms']:.2f} ({cell[c]['speedup_vs_dense']:.2f}x)" for c in cols) + " |")
    return "\n".join(lines)


def layer_table(runs: Path, model: str) -> str:
    """Per tensor / per layer of each pruned KWS model (its best checkpoint's record)."""
    lines = ["| model | layer | " + " | ".join(t for t, _, _ in KWS_ROWS[1:]) + " |",
             "|---|---|" + "---|" * (len(KWS_ROWS) - 1)]
    records = {t: (_load(runs / f"kws_{model}_{t}.prune.json") or {}).get("prune") or {} for t, _, _ in KWS_ROWS[1:]}
    names = [r["layer"] for r in records.get("u50", {}).get("tensors", [])]
    for name in names:
        cells = []
        for tag, rec in records.items():
            if "units" in rec:
                u = rec["units"].get(name)
                cells.append(f"{u['before']} -> {u['after']} units" if u else "kept")
            else:
                row = next((r for r in rec.get("tensors", []) if r["layer"] == name), None)
                cells.append("-" if row is None else f"{row['sparsity']:.4f}"
                             + (f" ({row['m_by_n_violations']} groups > 2 of 4)" if "m_by_n_violations" in row else ""))
        lines.append(f"| {model} | {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def denoiser_table(runs: Path) -> str:
    lines = ["| model | RNN units | weight-matrix MACs / frame | fine-tuning epochs | held-out mixtures PESQ | "
             "PESQ-WB FP32 | STOI FP32 | PESQ-WB mixed | STOI mixed | mixed .tflite MB |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for tag in ("dense", "s25"):
        fp32, mixed = _load(runs / f"lstm128_{tag}.fp32.eval.json"), _load(runs / f"lstm128_{tag}.mixed.eval.json")
        export = _load(runs / f"lstm128_{tag}.mixed.export.json")
        if fp32 is None or mixed is None:
            continue
        ckpt = runs / "lstm128_s25" / "best" if tag == "s25" else Path("tfdenoise/pretrained/lstm128")
        cfg = _load(ckpt / "config.json") or {}
        units = cfg.get("units", 128)
        macs = (cfg.get("prune") or {}).get("weights_after", 493_186)
        selection = cfg.get("metrics", {}).get("val_mix_pesq")
        lines.append(f"| LSTM128{' pruned' if tag != 'dense' else ''} | {units} | {macs:,} | "
                     f"{_epochs(runs / 'lstm128_s25') if tag != 'dense' else '185 (shipped)'} | "
                     f"{selection:.3f} | {fp32['mean']['pesq']:.3f} | {fp32['mean']['stoi']:.3f} | "
                     f"{mixed['mean']['pesq']:.3f} | {mixed['mean']['stoi']:.3f} | "
                     f"{export['file_bytes'] / 2**20:.3f} |")
    return "\n".join(lines)


def cost_table(runs: Path) -> str:
    lines = ["| model | file | board | V / MHz | latency ms per inference | MAC/cycle | energy uJ | fits | real time (6.25 ms hop) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for prec in ("mixed", "int8"):
        for board in ("gap9", "stm32f746"):
            for tag in ("dense", "s25"):
                r = _load(runs / f"lstm128_{tag}.{prec}.{board}.json")
                if r is None:
                    continue
                lines.append(f"| LSTM128{' pruned (96 units)' if tag != 'dense' else ''} | "
                             f"`{runs}/lstm128_{tag}.{prec}.tflite` | {board} | {r['vdd']} / {r['freq_mhz']:g} | "
                             f"{r['latency_ms']:.3f} | {r['mac_per_cycle']:.2f} | {r['energy_uj']:.1f} | "
                             f"{'yes' if r['fits'] else 'no'} | {'yes' if r['realtime_ok'] else 'no'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", default="runs/prune", help="folder tools/recipes/prune.sh wrote")
    p.add_argument("--kws-models", nargs="+", default=["dnn"], help="KWS networks to tabulate")
    args = p.parse_args(argv)
    runs = Path(args.runs)
    for model in args.kws_models:
        print(kws_table(runs, model), "\n")
        print(layer_table(runs, model), "\n")
        print(strategy_table(runs, model), "\n")
    print(denoiser_table(runs), "\n")
    print(cost_table(runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
