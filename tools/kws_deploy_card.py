"""Measure the shipped KWS model's exports and write them into its model card.

    python tools/kws_deploy_card.py [--data ../shared/data/kws/fsdd] [--noise ../shared/data/noise]

For ``tfdenoise/pretrained/<DEFAULT_KWS_MODEL>/tflite/*_{fp32,int8}.tflite`` (written by
``tfdenoise export``): file sizes; accuracy and DET of the Keras checkpoint and of each file on
FSDD's test split and the same one-hour stream (``tfdenoise kws evaluate``'s defaults); the
INT8 file's cost per decision on every board.  Replaces the card's "## Deployment" section and
``card.json["deployment"]``; every number is measured by this run.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

SECTION = "## Deployment"


def measure(data: str, noise: str | None) -> dict:
    from tfdenoise.kws.evaluate import EvalRequest
    from tfdenoise.kws_evaluate import evaluate_kws
    from tfdenoise.pretrained import kws_checkpoint, kws_tflite
    from tfdenoise.targets import analyze
    from tfdenoise.targets.boards import available_boards
    from tfdenoise.targets.report import to_json

    folder = kws_checkpoint()
    request = EvalRequest(data=data, noise=noise, cache_dir="runs/cache")
    rows = {}
    for name, spec in (("keras", folder), ("fp32", kws_tflite(folder.name, "fp32")),
                       ("int8", kws_tflite(folder.name, "int8"))):
        r = evaluate_kws(spec, request, progress=sys.stderr)
        rows[name] = {"accuracy": r["accuracy"], "frr_at_fa_per_hour": r["det"]["frr_at_fa_per_hour"],
                      "file_bytes": None if name == "keras" else Path(spec).stat().st_size}
    int8 = kws_tflite(folder.name, "int8")
    boards = {}
    for board in available_boards():
        j = to_json(analyze(int8, board=board))
        boards[board] = {k: j[k] for k in ("decision_ms", "latency_ms", "feature_ms", "hop_ms",
                                           "realtime_ok", "fits", "energy_uj", "vdd", "freq_mhz")}
        boards[board]["estimated_layers"] = [la["name"] for la in j["layers"] if la.get("estimate")]
    return {"exports": rows, "boards": boards}


def markdown(m: dict) -> str:
    e, b = m["exports"], m["boards"]
    lines = [SECTION, "", "Measured by `python tools/kws_deploy_card.py` on the shipped exports "
             "(`tflite/`, written by `tfdenoise export ... --all`; INT8 is full integer, input and "
             "output included, calibrated on 1,000 training-split windows), on the test split and "
             "the same one-hour stream as above.", "",
             "| form | file | accuracy | FRR @ 0.5 / 1 / 2 FA/h |", "|---|---|---|---|"]
    for name, r in e.items():
        size = "-" if r["file_bytes"] is None else f"{r['file_bytes']:,} B"
        frr = " / ".join(f"{100 * v:.1f} %" for v in r["frr_at_fa_per_hour"].values())
        lines.append(f"| {name} | {size} | {100 * r['accuracy']:.2f} % | {frr} |")
    ratio = e["fp32"]["file_bytes"] / e["int8"]["file_bytes"]
    lines += ["", f"INT8 is {ratio:.2f}x smaller than FP32 and loses "
              f"{100 * (e['keras']['accuracy'] - e['int8']['accuracy']):.2f} points of accuracy; "
              "its output tensor is INT8 with scale 1/256, so no posterior lies between 255/256 and 1 and "
              "the high thresholds where the float model reaches its lowest false-alarm rates cannot "
              "be set: the DET loses more than the accuracy.", "",
              "Cost of the INT8 file per decision (inference + one feature frame; `tfdenoise report`):", "",
              "| board | operating point | ms per decision (features) | hop | real time | uJ / inference |",
              "|---|---|---|---|---|---|"]
    for name, c in b.items():
        lines.append(f"| {name} | {c['vdd']} V / {c['freq_mhz']:g} MHz | {c['decision_ms']:.3f} "
                     f"({c['feature_ms']:.3f}) | {c['hop_ms']:g} ms | {'yes' if c['realtime_ok'] else 'NO'} "
                     f"| {c['energy_uj']:.1f} |")
    generic = {n: sorted(c.get("estimated_layers", [])) for n, c in b.items()}
    priced = [n for n, g in generic.items() if not g]
    lines.append("\nEvery layer is priced by a kernel model on " + (", ".join(priced) or "no board")
                 + "".join(f"; on {n} the generic estimate prices {', '.join(g)}" for n, g in generic.items() if g)
                 + " (targets/kernels.py, targets/cortexm.py, targets/neon.py).")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from tfdenoise.fileio import write_json, write_text
    from tfdenoise.pretrained import kws_checkpoint

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/kws/fsdd")
    ap.add_argument("--noise", default="../shared/data/noise")
    args = ap.parse_args(argv)
    m = measure(args.data, args.noise)
    folder = kws_checkpoint()
    card = (folder / "MODEL_CARD.md").read_text()
    head, _, after = card.partition(f"\n{SECTION}\n")
    head = head.rstrip("\n")
    rest = after.partition("\n## ")[2] or None   # the sections after Deployment, if any
    text = head + "\n\n" + markdown(m) + ("\n## " + rest if rest else "")
    write_text(folder / "MODEL_CARD.md", text)
    meta = json.loads((folder / "card.json").read_text())
    meta["deployment"] = m
    write_json(folder / "card.json", meta)
    print(markdown(m))
    return 0


if __name__ == "__main__":
    sys.exit(main())
