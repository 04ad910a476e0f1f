"""The denoiser's STFT front end and inverse-STFT back end per hop (targets/features.py): the
formula against a hand count, and its place in the real-time verdict, energy, average power,
JSON and Markdown of a denoiser report (reference graphs carry the export's metadata)."""
from __future__ import annotations

import dataclasses
import math

import pytest

from tfdenoise.targets import analyze_graph
from tfdenoise.targets.boards import load_board
from tfdenoise.targets.features import denoiser_cost, denoiser_macs, fc_rate, is_denoiser
from tfdenoise.targets.power import core_power_mw
from tfdenoise.targets.reference import build_reference
from tfdenoise.targets.report import to_json, to_markdown


def test_denoiser_front_end_by_hand_on_gap9():
    """gap9 at 0.8 V / 370 MHz: FFT 6 cycle/(point x stage), FC rate 16 x 0.25 / 9 / 1.1,
    square root 20 cycles, 3,000 cycles per pass, 8 cores; frame 400, FFT 512, 257 bins."""
    board = load_board("gap9")
    op = board.operating_points[0]
    macs = 400 + 2 * 257 + 2 * 257 + 400 + 400     # windows, |X|^2, mask x spectrum, overlap-add
    assert denoiser_macs() == macs == 2228
    fft = 2 * 6 * 512 * 9 / 8                     # forward + inverse real FFT
    mac = macs / (8 * (16 * 0.25 / 9 / 1.1))
    sqrt = 257 * 20 / 8
    cycles = math.ceil(fft + mac + sqrt + 2 * 3000)
    c = denoiser_cost(board, op)
    assert c.cycles == cycles and c.kind == "stft" and c.n_fft == 512 and c.hop_ms == 6.25
    assert (c.fft_cycles, c.sqrt_cycles, c.overhead_cycles) == (6912, round(sqrt), 6000)
    assert c.mac_cycles == round(mac) and c.ms == pytest.approx(cycles / 370e3)


def test_denoiser_front_end_on_a_single_core_board():
    board = load_board("stm32f746")
    op = board.operating_points[0]
    k = board.c
    cycles = math.ceil(2 * k("features.fft_cycles") * 512 * 9 + 2228 / fc_rate(board)
                       + 257 * k("features.sqrt_cycles") + 2 * k("features.overhead_cycles"))
    c = denoiser_cost(board, op)
    assert c.cycles == cycles and c.ms == pytest.approx(cycles / (op.freq_mhz * 1e3))


def test_only_denoiser_files_get_it():
    assert is_denoiser({"format": 1, "variant": "gru128"})
    assert is_denoiser({"variant": "lstm128", "family": "denoiser"})
    assert not is_denoiser({"family": "kws", "variant": "x"}) and not is_denoiser({}) and not is_denoiser(None)


@pytest.mark.parametrize("board", ["gap9", "stm32f746"])
def test_verdict_energy_and_power_include_it(board):
    g = build_reference("lstm128", "mixed")
    r = analyze_graph(g, board)
    f, p = r.features, r.power
    assert f.kind == "stft" and r.decision_ms == pytest.approx(r.schedule.latency_ms + f.ms)
    assert f.energy_uj == pytest.approx(core_power_mw(r.board, r.op) * f.ms)
    assert r.decision_energy_uj == pytest.approx(p.energy_uj + f.energy_uj)
    busy, energy = r.schedule.latency_ms + f.ms, p.energy_uj + f.energy_uj
    avg = (energy + p.sleep_mw * (6.25 - busy)) / 6.25 if busy <= 6.25 else energy / busy  # no sleep left
    assert p.avg_power_mw_at_hop == pytest.approx(avg)
    j = to_json(r)
    assert j["features"]["kind"] == "stft" and j["features"]["sqrt_cycles"] == f.sqrt_cycles
    assert j["decision_ms"] == round(r.decision_ms, 4) and j["feature_ms"] == round(f.ms, 4)
    assert j["realtime_margin_ms"] == round(6.25 - r.decision_ms, 4)
    assert j["total_cycles"] == sum(la["cycles"] for la in j["layers"])   # not a network layer
    md = to_markdown(r)
    assert "| STFT + inverse STFT per hop |" in md and "STFT / inverse STFT" in md.split("\n")[2]
    # the same network without the export's metadata: no front end, network-only verdict
    bare = analyze_graph(dataclasses.replace(g, metadata={}), board)
    assert bare.features is None and bare.decision_ms == bare.schedule.latency_ms
    assert bare.schedule.total_cycles == r.schedule.total_cycles


def test_front_end_can_break_real_time():
    """A hop the network alone meets but network + STFT / inverse STFT does not."""
    g = build_reference("gru128", "mixed")
    r = analyze_graph(g, "stm32f746")
    hop = r.schedule.latency_ms + r.features.ms / 2
    tight = analyze_graph(g, "stm32f746", hop_ms=hop)
    assert tight.fits and tight.schedule.latency_ms < hop and not tight.realtime_ok
    assert "does NOT keep up" in to_markdown(tight)
