"""The main job on the shipped default model, end to end (``make demo``).

    default checkpoint -> export --mixed (.tflite, Keras equivalence check)
    -> evaluate FP32 Keras vs mixed .tflite vs noisy input on the bundled Valentini pairs
    -> enhance the bundled real noisy phone call -> GAP9 hardware report
    -> keyword spotting: the shipped KWS model on bundled digits (:mod:`tfdenoise.demo_kws`)

Every artefact lands in one output folder; :func:`run_demo` returns their paths and the
measured numbers (also written as ``demo.json``).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from tfdenoise import samples
from tfdenoise.fileio import check_outputs, write_json


def shown(path: Path) -> str:
    """``path`` as a user would type it: relative to the working folder or to the package's
    parent folder (``tfdenoise/pretrained/lstm128``), never this machine's absolute path."""
    import tfdenoise

    path = Path(path).resolve()
    for base in (Path.cwd(), Path(tfdenoise.__file__).resolve().parent.parent):
        if base in path.parents:
            return str(path.relative_to(base))
    return str(path)


def run_demo(out: str | Path, jobs: int | None = None,
             log: Callable[[str], None] = print) -> dict:
    """Run the demo into ``out``; returns a JSON-able summary."""
    from tfdenoise.converters import export
    from tfdenoise.demo_kws import run_kws_step
    from tfdenoise.enhance import enhance_files
    from tfdenoise.pretrained import DEFAULT_VARIANT, PRETRAINED_DIR, default_checkpoint

    out = Path(out)
    check_outputs(folders=[out], input_trees=[PRETRAINED_DIR, samples.SAMPLES_DIR])
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    ckpt = default_checkpoint()
    log(f"[1/5] export {DEFAULT_VARIANT.upper()} ({shown(ckpt)}) to mixed FP16-INT8 .tflite")
    tfl = out / f"{DEFAULT_VARIANT}.mixed.tflite"
    exp = export(ckpt, "mixed", tfl)
    log(f"      {exp.path}: {exp.file_mb:.3f} MB file, {exp.param_mb:.3f} MB parameters, "
        f"max |mask diff| vs Keras on the calibration clips = {exp.max_mask_diff:.2e} "
        f"(99th percentile {exp.mask_check.p99_abs:.2e})")
    for w in exp.warnings:
        log(f"      warning: {w}")

    rows = _scores(ckpt, tfl, jobs, log)

    log("[3/5] enhance the bundled real noisy phone call with the mixed .tflite")
    wav = enhance_files(samples.phone_call(), out / "phone_call.enhanced.wav", str(tfl), jobs=1)[0]
    log(f"      {wav}")

    written, j = _gap9_report(tfl, out / "report", log)
    log("[5/5] keyword spotting: the shipped KWS model on bundled digits")
    kws = run_kws_step(log)
    summary = {
        "variant": DEFAULT_VARIANT, "checkpoint": str(ckpt), "tflite": str(tfl),
        "param_mb": exp.param_mb, "max_mask_diff": exp.max_mask_diff,
        "scores": rows, "enhanced": str(wav),
        "report": {k: str(v) for k, v in written.items()},
        "gap9": {k: j[k] for k in ("latency_ms", "mac_per_cycle", "energy_uj", "feature_ms", "decision_ms",
                                   "decision_energy_uj", "avg_power_mw_at_hop", "realtime_ok", "vdd", "l3")},
        "kws": kws,
        "seconds": round(time.time() - t0, 1),
    }
    write_json(out / "demo.json", summary)
    log(f"outputs in {out}/: {tfl.name}, {wav.name}, report/ (Markdown, HTML, JSON), demo.json "
        f"[{summary['seconds']:.0f} s]")
    return summary


def _scores(ckpt: Path, tfl: Path, jobs: int | None, log: Callable[[str], None]) -> dict:
    """Step 2: PESQ-WB / STOI of the noisy input, the Keras model and the .tflite."""
    from tfdenoise.evaluate import evaluate_pairs

    pairs = samples.pairs_dir()
    log(f"[2/5] validate on the {len(list((pairs / 'noisy').glob('*.wav')))} bundled Valentini test pairs")
    fp32 = evaluate_pairs(pairs, str(ckpt), jobs=jobs)
    mixed = evaluate_pairs(pairs, str(tfl), jobs=jobs)
    rows = {"noisy": fp32["noisy_mean"], "fp32 (Keras)": fp32["mean"], "mixed (.tflite)": mixed["mean"]}
    log(f"      {'':16} {'PESQ-WB':>8} {'STOI':>7}")
    for name, m in rows.items():
        log(f"      {name:16} {m['pesq']:8.3f} {m['stoi']:7.3f}")
    return rows


def _gap9_report(tfl: Path, folder: Path, log: Callable[[str], None]) -> tuple[dict, dict]:
    """Step 4: the GAP9 report of the .tflite, written to ``folder``; (paths, JSON view)."""
    from tfdenoise.targets import analyze
    from tfdenoise.targets.report import to_json, write_report

    log("[4/5] GAP9 hardware report of the mixed .tflite")
    report = analyze(tfl, board="gap9")
    written = write_report(report, folder)
    j = to_json(report)
    log(f"      {j['latency_ms']:.3f} ms per inference at {j['vdd']} V / {j['freq_mhz']:.0f} MHz "
        f"({j['mac_per_cycle']:.2f} MAC/cycle, L3 {j['l3']}), {j['energy_uj']:.1f} uJ")
    log(f"      + STFT / inverse STFT {j['feature_ms']:.3f} ms "
        f"({j['features']['energy_uj']:.1f} uJ) per {j['hop_ms']:g} ms hop: "
        f"{j['avg_power_mw_at_hop']:.2f} mW average, "
        f"{'keeps up with real time' if j['realtime_ok'] else 'NOT real time'}")
    return written, j
