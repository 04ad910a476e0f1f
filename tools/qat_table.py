"""Side-by-side tables of docs/qat.md: float, PTQ and QAT forms of the KWS DNN and of LSTM128.

    python tools/qat_table.py [--out out/qat] [--json F]

Quality comes from the JSON the named commands wrote into ``--out`` (runs/qat/kws_eval.sh:
``tfdenoise kws evaluate --json``; runs/qat/den_eval.sh: ``tfdenoise validate --json`` on the
10 bundled Valentini pairs); sizes from the files and their ``tfdenoise`` metadata; modeled
latency and energy per inference from ``tfdenoise report``'s model (``targets.analyze``, the
JSON of ``tfdenoise report FILE --target BOARD --json -``) on gap9 (0.8 V) and stm32f767.  A
row whose inputs are missing is printed with "-" (not measured).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

BOARDS = ("gap9", "stm32f767")
KWS_SHIPPED = Path("tfdenoise/pretrained/kws_dnn/tflite")
DEN_SHIPPED = Path("tfdenoise/pretrained/lstm128/tflite")
WIDTHS = (8, 5, 4, 2, 1)


def kws_rows(out: Path) -> list[dict]:
    """(label, evaluate JSON, .tflite) of every KWS form."""
    rows = [("float (Keras)", "eval_kws_float.json", KWS_SHIPPED / "kws_dnn_fp32.tflite"),
            ("FP32 .tflite", "eval_kws_fp32_tflite.json", KWS_SHIPPED / "kws_dnn_fp32.tflite"),
            ("INT8 PTQ (kws_int8)", "eval_kws_int8_tflite.json", KWS_SHIPPED / "kws_dnn_int8.tflite"),
            ("INT8 PTQ, float softmax", "eval_kws_int8fsm_tflite.json", out / "kws_dnn_int8fsm.tflite")]
    for b in WIDTHS:
        if b == 4:  # the Keras side once (runs/qat/kws_eval.sh)
            rows.append((f"QAT {b}-bit (Keras)", f"eval_kws_qat{b}_keras.json", None))
        rows.append((f"QAT {b}-bit .tflite", f"eval_kws_qat{b}_tflite.json", out / f"kws_dnn_qat{b}.tflite"))
    table = []
    for label, ev, tfl in rows:
        j = _load(out / ev)
        frr = (j or {}).get("det", {}).get("frr_at_fa_per_hour", {}) if j else {}
        table.append({"form": label, "accuracy": j.get("accuracy") if j else None,
                      "frr_at_1_fa_h": frr.get("1"), "file": str(tfl) if tfl else None,
                      **_costs(tfl)})
    return table


def den_rows(out: Path) -> list[dict]:
    """(label, validate JSON, row label in it, .tflite) of every denoiser form."""
    rows = [("float (Keras)", "val_lstm128_fp32.json", "keras float", DEN_SHIPPED / "lstm128_fp32.tflite"),
            ("INT8 PTQ, max", "val_lstm128_int8_max.json", "tflite int8", DEN_SHIPPED / "lstm128_int8_max.tflite"),
            ("INT8 PTQ, std3", "val_lstm128_int8_std3.json", "tflite int8", DEN_SHIPPED / "lstm128_int8_std3.tflite"),
            ("mixed PTQ, max", "val_lstm128_mixed_max.json", "tflite mixed", DEN_SHIPPED / "lstm128_mixed_max.tflite")]
    for run, label in (("den8_s1", "QAT 8-bit, stage 1 (lr 1e-5)"),
                       ("den8_s2", "QAT 8-bit, stage 2, max ranges"),
                       ("den8_s2b", "QAT 8-bit, stage 2, std3 ranges"),
                       ("den8_s2c", "QAT 8-bit, stage 2, std3 + learnt state range"),
                       ("den8_s2z", "QAT 8-bit, stage 1 at lr 1e-7, stage 2 at 3e-6"),
                       ("den8r4_s2", "QAT 8-bit, RNN 4-bit, stage 2, std3 ranges"),
                       ("den8a_s2", "QAT 8-bit, atanh start, stage 2 at 3e-6"),
                       ("den8f_s2", "QAT 8-bit, atanh start, stage 2 of fc_in only"),
                       ("den8r4a_s2", "QAT 8-bit, RNN 4-bit, atanh start")):
        rows.append((f"{label} (Keras)", f"val_lstm128_{run}.json", "keras float", None))
        rows.append((f"{label} .tflite", f"val_lstm128_{run}.json", "tflite int8", out / f"lstm128_{run}.tflite"))
    table = []
    for label, ev, which, tfl in rows:
        j = _load(out / ev)
        row = next((r for r in (j or {}).get("rows", []) if r["label"] == which), None)
        table.append({"form": label, "pesq": row and row["pesq"], "stoi": row and row["stoi"],
                      "file": str(tfl) if tfl else None, **_costs(tfl)})
    return table


def _load(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _costs(tflite: Path | None) -> dict:
    """File and parameter bytes and the modeled cost per inference on each board."""
    if tflite is None or not Path(tflite).is_file():
        return {}
    from tfdenoise.targets import analyze
    from tfdenoise.targets.report import to_json

    out = {"file_bytes": Path(tflite).stat().st_size}
    for board in BOARDS:
        j = to_json(analyze(tflite, board=board))
        out["param_bytes"], out["param_bytes_at_bit_width"] = j["param_bytes"], j["param_bytes_at_bit_width"]
        out[board] = {"latency_ms": j["latency_ms"], "energy_uj": j["energy_uj"],
                      "int4_unpack_cycles": j["int4_unpack_cycles"], "freq_mhz": j["freq_mhz"]}
    return out


def _f(v, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def markdown(rows: list[dict], quality: tuple[tuple[str, str, str], ...]) -> str:
    head = ["form", *(q[1] for q in quality), "file B", "params B", "params B at bit width",
            *(f"{b} ms / uJ" for b in BOARDS)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["form"], *(_f(r.get(k), fmt) for k, _, fmt in quality),
                 _f(r.get("file_bytes"), ","), _f(r.get("param_bytes"), ","),
                 _f(r.get("param_bytes_at_bit_width"), ",")]
        for b in BOARDS:
            c = r.get(b)
            cells.append("-" if not c else f"{c['latency_ms']:.3f} / {c['energy_uj']:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="out/qat", help="folder of the evaluation JSON and exported files")
    p.add_argument("--json", default=None, help="also write the rows as JSON here")
    args = p.parse_args(argv)
    out = Path(args.out)
    kws, den = kws_rows(out), den_rows(out)
    for r in kws:
        for k in ("accuracy", "frr_at_1_fa_h"):
            r[k + "_pct"] = None if r.get(k) is None else 100 * r[k]
    print("## Keyword spotting (KWS DNN, 12 classes)\n")
    print(markdown(kws, (("accuracy_pct", "accuracy %", ".2f"), ("frr_at_1_fa_h_pct", "FRR @ 1 FA/h %", ".1f"))))
    print("\n## Denoiser (LSTM128, 10 Valentini pairs)\n")
    print(markdown(den, (("pesq", "PESQ-WB", ".3f"), ("stoi", "STOI", ".4f"))))
    if args.json:
        Path(args.json).write_text(json.dumps({"kws": kws, "denoiser": den}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
