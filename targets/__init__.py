"""targets: .tflite -> modeled execution on an MCU (GAP9-class, STM32), no TensorFlow import.

Front door::

    from tfdenoise.targets import analyze
    report = analyze("model.tflite", board="gap9", vdd=0.65, l3="emram", policy="layer-order")
    report.schedule.latency_ms, report.memory.rho_l3, report.power.energy_uj

Pipeline (one module per step, see targets/pipeline.py):
read (reader, graph) -> layers -> memory -> tiling -> schedule (kernels) -> power -> report.
"""
from __future__ import annotations

from tfdenoise.targets.pipeline import analyze, analyze_graph
from tfdenoise.targets.types import Report

__all__ = ["analyze", "analyze_graph", "Report"]
