"""Print the README's table of shipped models: quality (from each model card, measured by
``tools/ship_model.py``) beside the modeled GAP9 cost of its mixed ``.tflite`` (measured now).

    python tools/pretrained_table.py [--vdd 0.65]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vdd", type=float, default=0.65)
    args = ap.parse_args()
    from tfdenoise.targets import analyze
    from tfdenoise.targets.report import to_json
    from tfdenoise.models import VARIANTS
    from tfdenoise.pretrained import PRETRAINED_DIR, tflite

    print(f"| model | epochs | PESQ-WB fp32 | PESQ-WB mixed | STOI mixed | mixed MB | GAP9 mixed @ {args.vdd} V: ms "
          "| MAC/cycle | uJ/inference | avg mW @ 6.25 ms hop (with STFT / iSTFT) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    noisy = None
    for name in VARIANTS:
        card_path = PRETRAINED_DIR / name / "card.json"
        if not card_path.is_file():
            continue
        card = json.loads(card_path.read_text())
        rows = {r["label"]: r for r in card["table"]["rows"]}
        noisy = rows["noisy"]
        cfg = json.loads((PRETRAINED_DIR / name / "config.json").read_text())
        j = to_json(analyze(tflite(name, "mixed"), board="gap9", vdd=args.vdd))
        print(f"| {name.upper()} | {len(card['history'])} (best {cfg['metrics']['epoch']}) | {rows['fp32']['pesq']:.3f} "
              f"| {rows['mixed (max)']['pesq']:.3f} | {rows['mixed (max)']['stoi']:.3f} "
              f"| {rows['mixed (max)']['param_mb']:.3f} | {j['latency_ms']:.3f} | {j['mac_per_cycle']:.2f} "
              f"| {j['energy_uj']:.1f} | {j['avg_power_mw_at_hop']:.2f} |")
    if noisy:
        print(f"\nNoisy input on the same 10 pairs: PESQ-WB {noisy['pesq']:.3f}, STOI {noisy['stoi']:.3f}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
