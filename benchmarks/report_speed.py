"""Time `tfdenoise report` per model (target: under 2 s each, cold matplotlib included).

Usage: .venv/bin/python benchmarks/report_speed.py [MODEL.tflite ...]
Without arguments it times the analytic reference graphs of the 4 variants x {fp16, mixed}
(analysis only, and analysis + Markdown/HTML/JSON with the 3 plots) and any .tflite given.
Prints one line per model: seconds for analysis, for the full report, and the ratio to 2 s.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tfdenoise.targets import analyze, analyze_graph  # noqa: E402
from tfdenoise.targets.reference import VARIANTS, build_reference  # noqa: E402
from tfdenoise.targets.report import write_report  # noqa: E402

BUDGET_S = 2.0


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main(argv: list[str]) -> int:
    jobs = [(f"reference {v} {p}", lambda v=v, p=p: analyze_graph(build_reference(v, p)))
            for v in VARIANTS for p in ("fp16", "mixed")]
    jobs += [(a, lambda a=a: analyze(a)) for a in argv]
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'model':28} {'analyze s':>9} {'report s':>9} {'total/2s':>8}")
        for name, job in jobs:
            report, t_an = timed(job)
            _, t_wr = timed(lambda: write_report(report, tmp))
            worst = max(worst, t_an + t_wr)
            print(f"{name:28} {t_an:9.3f} {t_wr:9.3f} {(t_an + t_wr) / BUDGET_S:8.2f}")
    print(f"worst {worst:.3f} s per model ({'OK' if worst < BUDGET_S else 'OVER'} the {BUDGET_S} s budget)")
    return 0 if worst < BUDGET_S else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
