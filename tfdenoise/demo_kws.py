"""The keyword-spotting step of ``tfdenoise demo``: the shipped KWS model on bundled clips only.

    20 bundled FSDD digit clips (tfdenoise/samples/kws, test split) -> accuracy of the Keras
    model and of its shipped full-INT8 .tflite -> a 2-minute stream of those words in generated
    noise -> detections and false alarms at one threshold -> the INT8 file costed per decision
    (inference + feature extraction) on GAP9 and on the STM32F7 paper's board.

Nothing here reads ``../shared``: the recorded noise may not be redistributed, so the stream's
background is generated (:func:`tfdenoise.kws.stream.build_stream` without a corpus).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

#: Stream length of the demo, and the posterior a detection must reach.
STREAM_MINUTES = 2.0
THRESHOLD = 0.9
BOARDS = ("gap9", "stm32f767")


def run_kws_step(log: Callable[[str], None]) -> dict:
    """Score, stream and cost the shipped KWS model; returns the numbers (JSON-able)."""
    from tfdenoise.converters.kws_runner import TFLiteKws
    from tfdenoise.kws import data
    from tfdenoise.kws.det import det_curve
    from tfdenoise.kws.evaluate import accuracy
    from tfdenoise.kws.stream import build_stream, stream_probs
    from tfdenoise.kws_evaluate import load_model
    from tfdenoise.pretrained import kws_checkpoint, kws_tflite
    from tfdenoise.samples import SAMPLES_DIR
    from tfdenoise.targets import analyze
    from tfdenoise.targets.report import to_json

    folder = kws_checkpoint()
    model, task, _ = load_model(folder)
    int8, fp32 = kws_tflite(folder.name, "int8"), kws_tflite(folder.name, "fp32")
    clips = data.list_clips(SAMPLES_DIR / "kws")
    signals = data.load_clips(clips)
    keras_acc = accuracy(model, clips, task, signals)
    lite_acc = accuracy(TFLiteKws(int8), clips, task, signals)
    log(f"      {len(clips)} bundled test-split digits: Keras {keras_acc['accuracy']:.0%}, "
        f"INT8 .tflite {lite_acc['accuracy']:.0%} ({int8.stat().st_size / 1e3:.0f} kB, "
        f"{fp32.stat().st_size / int8.stat().st_size:.1f}x smaller than FP32)")
    stream = build_stream([(x, c.label) for x, c in zip(signals, clips)], [], None,
                          hours=STREAM_MINUTES / 60, seed=0)
    keywords = [k for k in task.labels if not k.startswith("_")]
    det = det_curve(stream_probs(model, stream.audio), stream.events, model.labels, keywords,
                    model.features, stream.hours, sweep=[THRESHOLD])
    log(f"      {STREAM_MINUTES:.0f}-minute stream in generated noise: {det['hits'][0]} of "
        f"{det['occurrences']} words detected, {det['false_alarms'][0]} false alarms "
        f"(threshold {THRESHOLD})")
    costs = {}
    for board in BOARDS:
        j = to_json(analyze(int8, board=board))
        costs[board] = {k: j[k] for k in ("decision_ms", "feature_ms", "hop_ms", "realtime_ok",
                                           "energy_uj", "fits")}
    log("      INT8 per decision (inference + features): " + ", ".join(
        f"{b} {c['decision_ms']:.3f} ms of a {c['hop_ms']:g} ms hop"
        + ("" if c["realtime_ok"] else " (NOT real time)") for b, c in costs.items()))
    return {"model": str(Path(folder).name), "clips": len(clips),
            "accuracy": {"keras": keras_acc["accuracy"], "int8": lite_acc["accuracy"]},
            "int8_bytes": int8.stat().st_size, "fp32_bytes": fp32.stat().st_size,
            "stream": {"minutes": STREAM_MINUTES, "words": det["occurrences"], "threshold": THRESHOLD,
                       "detected": det["hits"][0], "false_alarms": det["false_alarms"][0]},
            "boards": costs}
