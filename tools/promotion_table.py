"""Print the tables of docs/promotion.md: every L2 promotion policy (targets/promotion.py, with
and without +prefetch) priced by the cost model on shipped mixed FP16-INT8 models.

    python tools/promotion_table.py                 # the per-configuration tables
    python tools/promotion_table.py --compare       # every shipped file on gap9: cycles / layer-order
    python tools/promotion_table.py --baseline F    # regression numbers of the reference policies
                                                    # (tests/targets/promotion_baseline.json)

tests/targets/promotion_baseline.json pins the reference policies to the code of commit 07fb9e6
(before the promotion strategies): it must be written by that commit's targets/ code (a checkout
of 07fb9e6 installed as tfdenoise, with this file copied into its tools/), never by the current
code, or test_reference_policies_unchanged would compare the code with itself. So --baseline
refuses to overwrite an existing file unless --force; it writes atomically.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: (variant, precision, vdd, L3) of the tables, all on gap9.
CONFIGS = (("lstm256", "mixed", 0.65, "emram"), ("lstm128", "mixed", 0.65, "emram"),
           ("lstm128", "mixed", 0.8, "flash"))
#: The policies of the reference design's era, whose numbers the baseline pins.
REFERENCE_POLICIES = ("layer-order", "tensor-order", "largest-first", "smallest-first", "none")
#: Shipped files and boards the baseline covers.
BASELINE_FILES = ("mixed_max", "fp16", "int8_max")
BASELINE_BOARDS = ("gap9", "stm32f767")


def table(variant: str, precision: str, vdd: float, l3: str) -> list[str]:
    """Markdown rows of every policy for one shipped model at one gap9 operating point."""
    from tfdenoise.pretrained import tflite
    from tfdenoise.targets import analyze
    from tfdenoise.targets.memory import POLICIES

    rows = [f"{variant.upper()} {precision}, gap9 {vdd:g} V, L3 {l3} "
            f"(`tfdenoise report --pretrained {variant} --precision {precision} --vdd {vdd:g} --l3 {l3} "
            "--policy NAME`)", "",
            "| policy | latency (ms) | energy (uJ) | L2 promoted (B) | rho_L3 | split layers (tiles in L2) "
            "| prefetch saved (cycles) |", "|---|---|---|---|---|---|---|"]
    for policy in POLICIES:
        r = analyze(tflite(variant, precision), "gap9", vdd, l3, policy)
        m = r.memory
        split = ", ".join(f"{n} ({k})" for n, k in m.resident_tiles.items()) or "-"
        saved = sum(t.prefetch_cycles for t in r.schedule.layers)
        rows.append(f"| {policy} | {r.schedule.latency_ms:.4f} | {r.power.energy_uj:.2f} | {m.promoted_bytes:,} "
                    f"| {m.rho_l3:.4f} | {split} | {saved:,} |")
    return rows


def compare() -> list[str]:
    """Every shipped denoiser file on gap9 (2 operating points x 2 L3): each policy's cycles
    divided by layer-order's (min / mean / max, where the max is), how often slower than none."""
    from tfdenoise.pretrained import PRETRAINED_DIR
    from tfdenoise.targets.boards import load_board
    from tfdenoise.targets.memory import POLICIES
    from tfdenoise.targets.pipeline import analyze_graph
    from tfdenoise.targets.reader import read_tflite

    board = load_board("gap9")
    ratios: dict[str, list[tuple[float, str]]] = {p: [] for p in POLICIES}
    slower = dict.fromkeys(POLICIES, 0)
    files = sorted(f for f in PRETRAINED_DIR.glob("*/tflite/*.tflite") if not f.name.startswith("kws"))
    for f in files:
        graph = read_tflite(f)
        for op in board.operating_points:
            for l3 in board.l3:
                cyc = {p: analyze_graph(graph, board, op.vdd, l3, p).schedule.total_cycles for p in POLICIES}
                for p, c in cyc.items():
                    ratios[p].append((c / cyc["layer-order"], f"{f.stem} {op.vdd:g} V {l3}"))
                    slower[p] += c > cyc["none"]
    rows = [f"{len(files)} shipped denoiser files x {len(board.operating_points)} operating points x "
            f"{len(board.l3)} L3 memories on gap9 = {len(ratios['none'])} configurations", "",
            "| policy | cycles / layer-order: min | mean | max | max at | configurations slower than none |",
            "|---|---|---|---|---|---|"]
    for p, v in ratios.items():
        worst = max(v)
        where = worst[1] if worst[0] > 1.0005 else "-"
        rows.append(f"| {p} | {min(v)[0]:.3f} | {statistics.fmean(r for r, _ in v):.3f} | {worst[0]:.3f} "
                    f"| {where} | {slower[p]} |")
    return rows


def baseline() -> dict[str, list]:
    """[total_cycles, energy_uj, rho_l3, l2_bytes_used] of each reference policy per shipped file
    (BASELINE_FILES of the four denoisers), board and operating point x L3."""
    from tfdenoise.models import VARIANTS
    from tfdenoise.pretrained import PRETRAINED_DIR
    from tfdenoise.targets.boards import load_board
    from tfdenoise.targets.pipeline import analyze_graph
    from tfdenoise.targets.reader import read_tflite
    from tfdenoise.targets.report import to_json

    out = {}
    for v in VARIANTS:
        for suffix in BASELINE_FILES:
            f = PRETRAINED_DIR / v / "tflite" / f"{v}_{suffix}.tflite"
            graph = read_tflite(f)
            for b in map(load_board, BASELINE_BOARDS):
                for op in b.operating_points:
                    for l3 in b.l3:
                        for p in REFERENCE_POLICIES:
                            j = to_json(analyze_graph(graph, b, op.vdd, l3, p, freq_mhz=op.freq_mhz))
                            out[f"{f.name}|{b.name}|{op.vdd}|{l3}|{p}"] = [
                                j["total_cycles"], j["energy_uj"], j["rho_l3"], j["l2_bytes_used"]]
    return out


def write_baseline(path: str, force: bool) -> int:
    """Write `baseline()` to `path` atomically; refuse an existing file unless `force` (exit 2)."""
    from tfdenoise.errors import OutputError, TfdenoiseError
    from tfdenoise.fileio import check_outputs, write_text

    try:
        if Path(path).exists() and not force:
            raise OutputError("exists; the promotion baseline must come from the code of commit 07fb9e6, "
                              "not from this code (see this tool's docstring); pass --force to overwrite it", path)
        check_outputs([path])
        write_text(path, json.dumps(baseline(), indent=0, sort_keys=True) + "\n")
    except TfdenoiseError as exc:
        print(f"promotion_table: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"wrote {path}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--compare", action="store_true", help="cycles of every policy / layer-order, all shipped files")
    ap.add_argument("--baseline", metavar="F", help="write the reference policies' numbers as JSON to F "
                    "(a new file; the test's baseline must come from the code of commit 07fb9e6)")
    ap.add_argument("--force", action="store_true", help="let --baseline overwrite an existing file")
    args = ap.parse_args()
    if args.baseline:
        return write_baseline(args.baseline, args.force)
    rows = compare() if args.compare else [line for c in CONFIGS for line in table(*c) + [""]]
    print("\n".join(rows).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
