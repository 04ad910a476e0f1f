"""Cortex-M kernel model (targets/cortexm*.py, targets/cores.py) against hand counts of the
CMSIS-NN inner loops, the M4 / M7 issue rules, flash wait states vs clock, --freq, the A53 board."""
from __future__ import annotations

import json
import math

import pytest

from tfdenoise.errors import BoardError, InputError
from tfdenoise.targets.boards import available_boards, load_board
from tfdenoise.targets.cores import Mix, flash_wait_states, price
from tfdenoise.targets.cortexm import (core_cycles, has_core, inner_loop, layer_cycles, matvec_cycles,
                                       weight_stall_cycles)
from tfdenoise.targets.cortexm_kernels import layer_compute_cycles
from tfdenoise.targets.types import ConvGeometry, Layer, ParamTensor
from tfdenoise.vocab import CodePrecision


@pytest.fixture(scope="module")
def m4():
    return load_board("stm32l476")


@pytest.fixture(scope="module")
def m7():
    return load_board("stm32f746")


def layer(kind="dense", precision="int8", macs=2048, params=(2048, 256), in_elems=32, out_elems=64,
          units=0, act=0, ew=0, geometry=None) -> Layer:
    ps = tuple(ParamTensor(i, f"p{i}", n, n) for i, n in enumerate(params))
    return Layer(0, "l", kind, precision, (0,), macs, ps, (0,), (1,), in_elems, out_elems, act, ew, units,
                 geometry=geometry)


# -- issue rules -----------------------------------------------------------------------------------

def test_m4_single_issue_sums_instruction_cycles(m4):
    assert price(m4, Mix(alu=2)) == 2
    assert price(m4, Mix(smlad=1, dsp=1)) == 2
    # three back-to-back loads pipeline (M4 TRM: N + 1 cycles); three isolated loads 2 cycles each
    assert price(m4, Mix(ld=3, ld_runs=1)) == 4
    assert price(m4, Mix(ld=3)) == 6
    assert price(m4, Mix(vfma=1)) == 3 and price(m4, Mix(branch=1)) == 3


def test_m7_dual_issue_pairs(m7):
    assert price(m7, Mix(alu=2)) == 1                  # two ALU ops pair
    assert price(m7, Mix(ld=2)) == 1                   # load/load pair (M7 TRM)
    assert price(m7, Mix(ld=1, alu=1)) == 1            # load + ALU pair
    assert price(m7, Mix(smlad=1, dsp=1)) == 2         # DSP only from the first slot: no pair
    assert price(m7, Mix(smlad=2)) == 2                # one MAC pipe
    assert price(m7, Mix(mul=1, alu=1)) == 1           # MAC + ALU pair
    assert price(m7, Mix(shift=2)) == 2                # one shifted operand per cycle
    assert price(m7, Mix(vfma=3, fchain=3)) == 9       # a dependent VFMA chain waits 3 cycles each


# -- inner loops: hand counts ----------------------------------------------------------------------

def test_fc_64x32_int8_m4_hand_count(m4):
    """arm_nn_vec_mat_mult_t_s8 on the M4, 64 rows x 32 columns.
    Iteration (2 rows x 4 columns = 8 MACs): LDR input + LDR weight row 0 + LDR weight row 1 in one
    run = 2 + 1 + 1 = 4, 6 SXTB16 = 6, 4 SMLAD = 4 -> 14, loop share (SUBS 1 + branch 3) / 4 = 1
    -> 15 cycles; 32 / 4 = 8 iterations per row pair; row setup 5 ALU + branch 3 = 8
    -> 8 x 15 + 8 = 128 per row pair, 32 pairs = 4096.
    Per output: bias LDR 2 + 15 ALU + 5 shifts + SMLAL 1 + STRB 1 = 24 -> 64 x 24 = 1536."""
    assert inner_loop(m4, "int8").per_iter_cycles == 15
    assert matvec_cycles(m4, "int8", True, 64, 32) == 32 * (8 * 15 + 8) + 64 * 24 == 5632
    assert layer_compute_cycles(m4, layer()) == 5632


def test_fc_64x32_int8_m7_hand_count(m7):
    """Same loop on the M7: 6 SXTB16 + 4 SMLAD all need the first issue slot -> 10 cycles; the
    3 loads and the loop share pair with them (13.5 instructions / 2 = 6.75 < 10). Row setup
    (5 ALU + branch) / 2 = 3. Per output: 23 instructions / 2 = 11.5 (shifts 5, MAC 1, memory 2
    fit). -> 32 x (8 x 10 + 3) + 64 x 11.5 = 3392."""
    assert inner_loop(m7, "int8").per_iter_cycles == 10
    assert matvec_cycles(m7, "int8", True, 64, 32) == 32 * (8 * 10 + 3) + 64 * 11.5 == 3392


def test_q15_and_fp32_loops(m4, m7):
    # q15 SIMD (2 rows x 4 cols): 6 LDR in a run = 2 + 5, 4 SMLAD, loop 1 -> 12 cycles / 8 MACs
    assert inner_loop(m4, "q15").per_mac_cycles == 12 / 8
    # q15 scalar (2 rows x 1 col): 3 LDRSH = 2 + 2, 2 MLA, loop 1 -> 7 cycles / 2 MACs
    assert inner_loop(m4, "q15", simd=False).per_mac_cycles == 7 / 2
    # fp32 (no SIMD on FPv4): 2 VLDR in a run = 2 + 1, VFMA 3, loop 1 -> 7 cycles per MAC
    assert inner_loop(m4, "fp32").per_mac_cycles == 7
    # M7: the single-accumulator VFMA chain binds: 3 cycles per MAC
    assert inner_loop(m7, "fp32").per_mac_cycles == 3
    # int8 scalar (3 rows x 1 col): 4 LDRSB = 2 + 3, ADD 1, 3 MLA, loop 1 -> 10 cycles / 3 MACs
    assert inner_loop(m4, "int8", simd=False).per_mac_cycles == pytest.approx(10 / 3)


def test_inner_loop_api_pieces(m4, m7):
    lp = inner_loop(m4, CodePrecision.INT8)
    assert (lp.rows, lp.cols, lp.macs) == (2, 4, 8)
    assert lp.mac_cycles == 4 / 8                       # 4 SMLAD per 8 MACs
    assert lp.weight_load_cycles == (2 * 2 + 4) / 8     # 2 LDR (alone: 2 cycles) + 4 SXTB16 per 8 weights
    assert lp.input_load_cycles == (2 + 2) / 4          # 1 LDR + 2 SXTAB16 per 4 inputs
    assert lp.loop_cycles == 1 and lp.per_output_cycles == 24 and lp.test_cycles == 1
    assert (lp.branch_taken_cycles, lp.branch_mispredict_cycles) == (3, 3)
    assert inner_loop(m7, "int8").branch_mispredict_cycles == 5


def test_conv_im2col_hand_count(m4):
    """arm_convolve_s8 on the M4: 2 x 2 output pixels, 2 filters of 3 x 3 x 4 (K = 36), pad same.
    Per pixel: 9 memcpy chunks of 4 B, each = bounds check (4 ALU + branch 3 = 7) + call 16 +
    (1 LDR + 1 STR + 4 ALU + branch 3 = 2 + 1 + 4 + 3 = 10) = 33 -> 297; s8 -> s16 of 36 values =
    9 x (LDR 2 + 2 SXTAB16 + 2 STR + loop 1 = 7) + call 16 = 79.  Per pixel pair, per filter pair:
    9 iterations x (6 LDR in 2 runs = 2 x 2 + 4 x 1 = 8, 4 SXTB16, 8 SMLAD, loop 1 = 21) + row
    setup 8 = 197.  Per output: requantize 24 + 2 per-channel LDR (alone: 4) = 28."""
    g = ConvGeometry("CONV_2D", 2, 2, 4, 2, 2, 2, 3, 3)
    la = layer(kind="conv", macs=2 * 2 * 2 * 36, params=(72, 8), in_elems=16, out_elems=8, geometry=g)
    per_pixel = 9 * (7 + 16 + 10) + (9 * 7 + 16)
    pairs = 2 * (1 * (9 * 21 + 8))
    assert layer_compute_cycles(m4, la) == 4 * per_pixel + pairs + 8 * 28


def test_lstm_formula_counts_gates_and_steps(m7):
    """arm_lstm_unidirectional_s8: per step 4 gates x (input + hidden matvec with the 16-bit
    accumulate output, H int16 memset, H activations, 3 calls), 3 H int16 products, H tanh."""
    h, n_in, t = 8, 16, 3
    la = layer(kind="lstm", macs=t * 4 * h * (n_in + h), params=(4 * h * (n_in + h), 16 * h),
               units=h, act=5 * h * t, in_elems=t * n_in, out_elems=t * h)
    from tfdenoise.targets.cortexm_kernels import ACC16_OUTPUT, ACT_S16, EW_MUL_S16
    from tfdenoise.targets.cortexm_loops import loop_overhead

    mv = matvec_cycles(m7, "int8", True, h, n_in, ACC16_OUTPUT) + matvec_cycles(m7, "int8", True, h, h, ACC16_OUTPUT)
    act = price(m7, ACT_S16 + loop_overhead(m7))
    ew = price(m7, EW_MUL_S16 + loop_overhead(m7))
    memset = h * 0.5 * price(m7, Mix(st=1))
    want = t * (4 * (mv + h * act + memset + 3 * m7.c("core.call_cycles")) + 3 * h * ew + h * act)
    assert layer_compute_cycles(m7, la) == pytest.approx(want)
    assert core_cycles(m7, la) == pytest.approx(want / m7.c("core.efficiency"))


def test_generic_layers_keep_the_estimate(m7):
    assert layer_compute_cycles(m7, layer(kind="generic", macs=0)) is None
    assert layer_compute_cycles(m7, layer(kind="conv")) is None          # no geometry: no kernel


def test_efficiency_is_calibrated_and_named():
    for core in ("stm32l476", "stm32f746"):
        c = load_board(core).constants["core.efficiency"]
        assert 0.2 < c.value < 0.6 and "calibrated" in c.source and "181.92 ms" in c.source


# -- flash wait states and stalls ------------------------------------------------------------------

@pytest.mark.parametrize("board,freq,ws", [
    ("stm32f746", 216, 7), ("stm32f746", 210, 6), ("stm32f746", 30, 0), ("stm32f746", 31, 1),
    ("stm32f746", 180, 5), ("stm32l476", 80, 4), ("stm32l476", 16, 0), ("stm32l476", 17, 1),
    ("stm32l476", 64, 3), ("stm32l4r5", 120, 5), ("stm32l4r5", 100, 4)])
def test_wait_states_follow_the_clock(board, freq, ws):
    assert flash_wait_states(load_board(board), freq) == ws


def test_weight_stalls_from_flash(m7, m4):
    """FC 64 x 32 int8 (2048 B weights + 256 B bias = 2304 B) streamed from flash: more than half
    the 4 KB D-cache, so every byte misses once: 2304 / 32 B lines x (7 WS + 4) = 792 cycles at
    216 MHz, 72 x (3 + 4) = 504 at 100 MHz. On the L476: 8-byte flash words, 4 WS: 288 x 4."""
    la = layer()
    assert weight_stall_cycles(m7, m7.operating_point(None), la, "flash", 2304) == (792, 2304)
    assert weight_stall_cycles(m7, m7.operating_point(None, 100), la, "flash", 2304)[0] == 504
    assert weight_stall_cycles(m4, m4.operating_point(None), la, "flash", 2304)[0] == 288 * 4
    assert weight_stall_cycles(m7, m7.operating_point(None), la, "flash", 0) == (0, 0)
    # weights that fit half the D-cache are re-read from the cache: cold misses only
    small = layer(kind="conv", params=(1024,), geometry=ConvGeometry("CONV_2D", 8, 8, 4, 8, 8, 4, 3, 3))
    assert weight_stall_cycles(m7, m7.operating_point(None), small, "flash", 1024)[1] == 1024


def test_layer_cycles_at_each_code_precision(m7):
    la = layer()
    c = {p: layer_cycles(m7, la, p) for p in CodePrecision}
    assert c[CodePrecision.INT8] < c[CodePrecision.FP32] and c[CodePrecision.Q15] < c[CodePrecision.FP32]
    assert has_core(m7) and not has_core(load_board("gap9"))


# -- boards ------------------------------------------------------------------------------------------

def test_stm32_boards_use_their_cores():
    assert {"stm32f746", "stm32f767", "stm32l476", "stm32l4r5", "stm32f767_sdram", "cortex_a53"} <= set(available_boards())
    for name, core in (("stm32f746", "cortex-m7"), ("stm32f767", "cortex-m7"), ("stm32l476", "cortex-m4"),
                       ("stm32l4r5", "cortex-m4")):
        b = load_board(name)
        assert b.core == core and b.core_family == "cortex-m" and b.default_policy == "none"
        for k, c in b.constants.items():
            if k.startswith(("mcu.", "core.")):
                assert c.source.strip() and c.unit
    assert load_board("stm32f767").c("mcu.dcache_bytes") == 16384
    assert load_board("stm32f767_sdram").c("mcu.act_miss_cycles") > 0


def test_bad_core_file_reference(tmp_path):
    src = (load_board("stm32f746").path)
    text = open(src, encoding="utf-8").read().replace('core = "cortex-m7"', 'core = "cortex-m99"')
    p = tmp_path / "b.toml"
    p.write_text(text)
    with pytest.raises(BoardError, match="no core file 'cortex-m99'"):
        load_board(p)
    p.write_text(text.replace('core = "cortex-m99"', 'core = "cortex-m7"').replace("[mcu]\n", "[mcu]\nbogus = 1\n"))
    with pytest.raises(BoardError, match="unknown key 'mcu.bogus'"):
        load_board(p)


def test_gap9_has_no_core_file():
    g = load_board("gap9")
    assert g.core == "" and g.default_policy == "" and not any(k.startswith(("core.", "mcu.")) for k in g.constants)


def test_a53_board():
    """The shipped KWS DNN (246 K MACs): INT8 in 8-bit NEON containers beats FP32 by the loop
    rates (64 MACs / 16 cycles vs 16 / 10) with warm caches, by the 4x smaller weight stream
    from DRAM with cold ones (the board's default)."""
    from tfdenoise.pretrained import kws_tflite
    from tfdenoise.targets import analyze

    b = load_board("cortex_a53")
    assert b.core_family == "cortex-a" and b.operating_points[0].freq_mhz == 1200 and b.default_policy == "none"
    run = {(p, pol): analyze(kws_tflite("kws_dnn", p), board=b, policy=pol)
           for p in ("int8", "fp32") for pol in (None, "layer-order")}
    assert all(r.fits and not any(t.estimate for t in r.schedule.layers) for r in run.values())
    warm = run["fp32", "layer-order"].schedule.latency_ms / run["int8", "layer-order"].schedule.latency_ms
    cold = run["fp32", None].schedule.latency_ms / run["int8", None].schedule.latency_ms
    assert 1.5 < warm < 4 and warm < cold
    assert run["int8", None].memory.rho_l3 == 1.0 and run["int8", "layer-order"].memory.rho_l3 == 0.0


def test_cnn_layers_priced_on_cortex_m(tflite):
    """The foreign CNN (conv, depthwise, pools, softmax) gets kernels on the M7: no estimate."""
    from tfdenoise.targets import analyze

    r = analyze(tflite("foreign_int8"), board="stm32f746")
    assert not any(t.estimate for t in r.schedule.layers)
    assert not any("generic estimate" in w for w in r.warnings)
    assert all(t.cycles > 0 for t in r.schedule.layers if t.macs)


# -- --freq ----------------------------------------------------------------------------------------

def test_freq_changes_clock_and_wait_states(tflite):
    from tfdenoise.targets import analyze

    full = analyze(tflite("lstm_int8"), board="stm32f746")
    half = analyze(tflite("lstm_int8"), board="stm32f746", freq_mhz=108)
    assert half.op.freq_mhz == 108 and half.op.vdd == full.op.vdd
    # fewer wait states at 108 MHz (3 instead of 7): fewer cycles, but a longer latency
    assert half.schedule.total_cycles < full.schedule.total_cycles
    assert full.schedule.latency_ms < half.schedule.latency_ms < 2 * full.schedule.latency_ms
    assert half.power.core_mw < full.power.core_mw
    with pytest.raises(InputError, match="outside board stm32f746's range"):
        analyze(tflite("lstm_int8"), board="stm32f746", freq_mhz=300)
    with pytest.raises(InputError, match="outside"):
        analyze(tflite("lstm_int8"), board="gap9", vdd=0.65, freq_mhz=300)


def test_freq_cli(tflite, capsys):
    from tfdenoise.cli import main

    assert main(["report", str(tflite("lstm_int8")), "--target", "stm32l476", "--freq", "48", "--json", "-"]) == 0
    j = json.loads(capsys.readouterr().out)
    assert j["freq_mhz"] == 48 and j["policy"] == "none" and j["rho_l3"] == 1.0
    code = main(["report", str(tflite("lstm_int8")), "--target", "stm32l476", "--freq", "100"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "--freq 100 MHz is outside" in err[0]
    assert math.isfinite(j["latency_ms"])
