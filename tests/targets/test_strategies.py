"""targets/strategies.py: each strategy formula against a hand count of its loop on a tiny FC
layer with a known zero pattern; the strategies on the Cortex-M kernel model (dense = the kernel
model's cycles, skip-row halves the MAC work of a half-empty layer, unstructured skipping does not
pay on INT8 SIMD); the CLI (--strategy all, unknown names, gap9)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tfdenoise.errors import InputError
from tfdenoise.targets.graph import Graph, Operator, Quantization, Subgraph, Tensor
from tfdenoise.targets.layers import group_layers
from tfdenoise.targets.sparsity import layer_sparsity
from tfdenoise.targets.strategies import LoopCosts, parse_strategies, strategy_cycles
from tfdenoise.vocab import LoopStrategy

#: 4 outputs x 8 inputs: row 1 all zero, row 3 dense
W = np.array([[1, 0, 0, 2, 0, 3, 0, 4],
              [0, 0, 0, 0, 0, 0, 0, 0],
              [5, 6, 7, 0, 0, 0, 0, 8],
              [1, 2, 3, 4, 5, 6, 7, 8]], dtype=np.int8)
#: distinct values, so that a term counted the wrong number of times shows
COSTS = LoopCosts(dense=1000.0, loop=26.0, scalar_mac=1.75, row_scalar=1.25, row=5.0,
                  use_nz=4.0, use_z=3.0, flag_nz=2.25, flag_z=3.5, wf_nz=6.0, wf_z=4.5, wf_use=5.5, init=7.0,
                  mispredict=6.0)


def fc_graph(w: np.ndarray, steps: int = 1) -> Graph:
    """x [steps, n_in] -> FULLY_CONNECTED(w INT8, bias) -> y [steps, n_out]."""
    n_out, n_in = w.shape
    wt = Tensor(1, "fc/w", "INT8", (n_out, n_in), Quantization((0.1,), (0,), 0), w.astype(np.int8).tobytes())
    bias = Tensor(2, "fc/b", "INT32", (n_out,), None, bytes(4 * n_out))
    x = Tensor(0, "x", "INT8", (steps, n_in))
    y = Tensor(3, "y", "INT8", (steps, n_out))
    sg = Subgraph("main", (x, wt, bias, y), (Operator(0, "FULLY_CONNECTED", (0, 1, 2), (3,)),), (0,), (3,))
    return Graph("<fc>", (sg,))


def layer_and_sparsity(w: np.ndarray, steps: int = 1):
    g = fc_graph(w, steps)
    la = group_layers(g)[0][0]
    return la, layer_sparsity(g, la)


def walk(w: np.ndarray, c: LoopCosts, strategy: str) -> float:
    """The loop nest of `strategy` executed weight by weight on FC weights `w` (one use per weight),
    charging each event; a branch predictor that remembers the last outcome (within a row for a
    per-weight branch, across rows for the per-row flag)."""
    n_out = len(w)
    per_mac = c.loop / w.size                                   # the dense loop inside c.dense, per MAC
    if strategy == "scalar":
        return c.dense - c.loop + w.size * c.scalar_mac + n_out * c.row_scalar
    if strategy == "skip-row":
        cyc, last = c.dense, None
        for row in w:
            zero = not row.any()
            cyc += c.flag_z - len(row) * per_mac if zero else c.flag_nz
            cyc += c.mispredict if last is not None and zero != last else 0.0
            last = zero
        return cyc
    cyc = c.dense - c.loop
    for row in w:
        cyc += c.row if strategy == "skip-zero" else c.init
        last = None
        for v in row:
            zero = v == 0
            if strategy == "skip-zero":
                cyc += c.use_z if zero else c.use_nz
            else:                                   # weight-first: the weight's one use
                cyc += c.wf_z if zero else c.wf_nz + c.wf_use
            cyc += c.mispredict if last is not None and zero != last else 0.0
            last = zero
    return cyc


@pytest.mark.parametrize("strategy", ["scalar", "skip-zero", "skip-row", "weight-first"])
def test_formula_matches_the_hand_count(strategy):
    la, sp = layer_and_sparsity(W)
    got = strategy_cycles(strategy, la, sp, COSTS, "int8")
    assert got.cycles == round(walk(W, COSTS, strategy))
    assert got.layer == la.name and got.strategy == strategy and got.precision == "int8"


def test_hand_count_by_numbers():
    la, sp = layer_and_sparsity(W)
    # skip-zero: 1000 - (32 x 0.5 + 4 x 2.5) + 16 x 4 + 16 x 3 + 8 switches x 6 + 4 x 5
    sz = strategy_cycles("skip-zero", la, sp, COSTS)
    assert sz.cycles == 1000 - 26 + 64 + 48 + 48 + 20 and (sz.tests, sz.macs, sz.mispredicts) == (32, 16, 8)
    # skip-row: 1000 - 8 x 26 / 32 + 3 rows x 2.25 + 1 zero row x 3.5 + 2 row switches x 6
    sr = strategy_cycles("skip-row", la, sp, COSTS)
    assert sr.cycles == round(1000 - 6.5 + 6.75 + 3.5 + 12) and (sr.tests, sr.macs, sr.mispredicts) == (4, 24, 2)
    # weight-first: 1000 - 26 + 16 x (6 + 5.5) + 16 x 4.5 + 8 x 6 + 4 x 7
    wf = strategy_cycles("weight-first", la, sp, COSTS)
    assert wf.cycles == 1000 - 26 + 184 + 72 + 48 + 28 and (wf.tests, wf.macs) == (32, 16)
    assert strategy_cycles("dense", la, sp, COSTS).cycles == 1000


def test_uses_per_weight_scale_the_per_use_terms():
    # the same weights read at 3 time steps: every per-use term x 3; weight-first tests once
    la1, sp1 = layer_and_sparsity(W, 1)
    la3, sp3 = layer_and_sparsity(W, 3)
    assert la3.macs == 3 * la1.macs
    c1 = LoopCosts(**{**COSTS.__dict__, "dense": 0.0})
    c = LoopCosts(**{**COSTS.__dict__, "dense": 0.0, "loop": 3 * COSTS.loop})   # a 3 x longer dense loop
    for s in ("scalar", "skip-zero", "skip-row"):
        one = strategy_cycles(s, la1, sp1, c1).cycles
        assert strategy_cycles(s, la3, sp3, c).cycles == pytest.approx(3 * one, abs=2)
    wf1 = strategy_cycles("weight-first", la1, sp1, c1)
    wf3 = strategy_cycles("weight-first", la3, sp3, c)
    assert wf3.tests == wf1.tests == 32 and wf3.macs == 3 * wf1.macs
    # 2 more uses per nonzero weight, 8 more outputs (init), a 3 x longer dense loop replaced
    assert wf3.cycles - wf1.cycles == round(16 * 2 * 5.5 + 8 * 7 - (78 - 26))


def test_parse_strategies():
    assert parse_strategies("all") == tuple(LoopStrategy)
    assert parse_strategies("skip-row, dense,skip-row") == (LoopStrategy.SKIP_ROW, LoopStrategy.DENSE)
    with pytest.raises(InputError, match=r"unknown loop strategy 'skipzero' \(known: dense, scalar, "
                                         r"skip-zero, skip-row, weight-first, all\)"):
        parse_strategies("skipzero")
    with pytest.raises(InputError, match="empty"):
        parse_strategies(" , ")


# -- on the Cortex-M kernel model -----------------------------------------------------------

def random_fc(n_out: int = 64, n_in: int = 256, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    w = rng.integers(-127, 128, size=(n_out, n_in))
    return np.where(w == 0, 1, w).astype(np.int8)          # dense: no zero weight


@pytest.fixture(scope="module")
def m7():
    from tfdenoise.targets.boards import load_board

    return load_board("stm32f767")


def price(w: np.ndarray, board, strategies=tuple(LoopStrategy), precisions=("fp32", "q15", "int8")):
    from tfdenoise.targets.strategies import price_strategies

    g = fc_graph(w)
    return price_strategies(g, board, strategies, precisions)


@pytest.mark.parametrize("precision", ["fp32", "q15", "int8"])
def test_dense_is_the_kernel_model(m7, precision):
    from tfdenoise.targets import cortexm

    la = group_layers(fc_graph(random_fc()))[0][0]
    p = price(random_fc(), m7, ("dense",), (precision,))
    want = cortexm.layer_cycles(m7, la, precision, m7.operating_point(None))
    assert p.layers[0].cycles == round(want)


def test_dense_matches_the_report_at_the_files_precision(m7):
    from tfdenoise.targets import analyze_graph
    from tfdenoise.targets.strategies import price_strategies

    g = fc_graph(random_fc())
    r = analyze_graph(g, m7)
    p = price_strategies(g, m7, ("dense",), ("int8",), r.layers, r.op, r.memory)
    # the same kernel, weights resident / streamed as the plan keeps them; the strategy prices
    # the biases at 1 byte per element (int8 code), the report at their stored 4 bytes
    assert p.layers[0].cycles == pytest.approx(r.schedule.layers[0].cycles, rel=0.01)


def test_scalar_equals_dense_in_fp32_and_is_slower_with_simd(m7):
    p = price(random_fc(), m7, ("dense", "scalar"))
    assert p.cycles("scalar", "fp32") == p.cycles("dense", "fp32")   # no float SIMD on FPv5
    assert p.cycles("scalar", "q15") > 1.3 * p.cycles("dense", "q15")
    assert p.cycles("scalar", "int8") > p.cycles("dense", "int8")


def test_skip_row_with_half_the_rows_zero_saves_half_the_mac_cycles(m7):
    from tfdenoise.targets.strategies import mac_loop

    w = random_fc()
    w[::2] = 0                                                # every other output row
    p = price(w, m7, ("dense", "skip-row"), ("int8",))
    dense, skip = (c.cycles for c in p.layers)
    mac_cycles = mac_loop(m7, group_layers(fc_graph(w))[0][0], "int8")
    saved = dense - skip
    assert 0.45 * mac_cycles < saved < 0.5 * mac_cycles      # half the MAC work, minus the row tests


def test_unstructured_half_sparsity_gains_nothing_on_int8_simd(m7):
    from tfdenoise.targets.sparsity import Structure, sparsify
    from tfdenoise.targets.strategies import price_strategies

    g = fc_graph(random_fc())
    g50 = sparsify(g, 0.5, Structure.UNSTRUCTURED)
    p = price_strategies(g50, m7, tuple(LoopStrategy), ("int8", "q15"))
    for prec in ("int8", "q15"):
        dense = p.cycles("dense", prec)
        assert p.cycles("skip-zero", prec) > dense           # SIMD lost + test, branch, mispredicts
        assert p.cycles("weight-first", prec) > dense        # FC: one use per weight, nothing to save
        assert p.cycles("skip-row", prec) >= dense           # no row is empty
    sz = next(c for c in p.layers if c.strategy == "skip-zero" and c.precision == "int8")
    assert sz.macs == g50.main.tensors[1].size // 2 and sz.mispredicts > 0.3 * sz.tests


def test_row_structured_sparsity_pays(m7):
    from tfdenoise.targets.sparsity import Structure, sparsify
    from tfdenoise.targets.strategies import price_strategies

    g = sparsify(fc_graph(random_fc()), 0.75, Structure.ROW)
    p = price_strategies(g, m7, ("dense", "skip-row"), ("int8",))
    assert p.cycles("skip-row", "int8") < 0.5 * p.cycles("dense", "int8")


def test_gap9_has_no_strategies():
    from tfdenoise.targets.boards import load_board
    from tfdenoise.targets.strategies import check_board

    with pytest.raises(InputError, match=r"board gap9 has no loop-strategy pricing .*stm32f767"):
        check_board(load_board("gap9"))


# -- command line ---------------------------------------------------------------------------

KWS = "tfdenoise/pretrained/kws_dnn"


def parse(argv):
    import argparse

    from tfdenoise.commands import report as cmd

    p = argparse.ArgumentParser()
    cmd.add_parser(p.add_subparsers())
    return p.parse_args(["report", *argv])


def test_cli_strategy_all(tmp_path, capsys):
    from tfdenoise.commands import report as cmd

    out = tmp_path / "o"
    assert cmd.run(parse([KWS, "--target", "stm32f767", "--strategy", "all", "-o", str(out),
                          "--json", str(tmp_path / "r.json")])) == 0
    text = capsys.readouterr().out
    assert "## Loop strategies" in text and "| strategy | fp32 | q15 | int8 |" in text
    for s in LoopStrategy:
        assert f"| {s} |" in text
    j = json.loads((tmp_path / "r.json").read_text())
    st = j["strategies"]
    assert set(st) == {"board", "freq_mhz", "strategies", "precisions", "totals", "other_cycles", "layers"}
    assert st["strategies"] == list(LoopStrategy) and st["precisions"] == ["fp32", "q15", "int8"]
    assert len(st["totals"]) == 15 and [la["name"] for la in st["layers"]] == ["fc_0", "fc_1", "fc_2", "logits"]
    dense = {t["precision"]: t for t in st["totals"] if t["strategy"] == "dense"}
    assert dense["int8"]["speedup_vs_dense"] == 1.0
    # the file is int8: dense int8 is the report's own latency (same kernel model, same memory plan)
    assert dense["int8"]["latency_ms"] == pytest.approx(j["latency_ms"], rel=0.01)
    assert set(st["layers"][0]["cycles"]) == set(LoopStrategy)
    written = json.loads(next(out.glob("*.json")).read_text())
    assert written["strategies"] == st and "Loop strategies" in next(out.glob("*.md")).read_text()
    assert "<h2>Loop strategies</h2>" in next(out.glob("*.html")).read_text()


def test_cli_strategy_errors(tmp_path):
    from tfdenoise.commands import report as cmd

    with pytest.raises(InputError, match=r"unknown loop strategy 'fast' \(known: dense, scalar"):
        cmd.run(parse([KWS, "--target", "stm32f767", "--strategy", "fast"]))
    with pytest.raises(InputError, match="board gap9 has no loop-strategy pricing"):
        cmd.run(parse([KWS, "--strategy", "all", "-o", str(tmp_path / "x")]))
    assert not (tmp_path / "x").exists()                      # refused before any output


def test_cli_sparsity_sweep(tmp_path, capsys):
    from tfdenoise.commands import report as cmd

    out = tmp_path / "sw"
    assert cmd.run(parse([KWS, "--target", "stm32f767", "--strategy", "dense,skip-zero,skip-row",
                          "--sweep", "-o", str(out)])) == 0
    rows = json.loads((out / "sparsity_sweep.json").read_text())
    assert len(rows) == 2 * 10 * 3 * 3                       # structures x sparsities x strategies x codes
    assert {r["structure"] for r in rows} == {"unstructured", "row"}
    at = {(r["structure"], r["sparsity"], r["strategy"], r["precision"]): r for r in rows}
    assert at[("unstructured", 0.5, "dense", "int8")]["zero_fraction"] == pytest.approx(0.5, abs=0.01)
    assert at[("row", 0.5, "skip-row", "int8")]["latency_ms"] < 0.7 * at[("row", 0.5, "dense", "int8")]["latency_ms"]
    unstructured = {s: at[("unstructured", 0.5, s, "int8")]["latency_ms"] for s in ("dense", "skip-zero")}
    assert unstructured["skip-zero"] > unstructured["dense"]
    assert "## int8" in (out / "sparsity_sweep.md").read_text()
    assert (out / "sparsity_sweep.png").stat().st_size > 10000
    assert "wrote" in capsys.readouterr().out


def test_branch_prediction_per_core(m7):
    from tfdenoise.targets.boards import load_board
    from tfdenoise.targets.strategies import event_costs, predicts

    m4 = load_board("stm32l476")
    assert predicts(m7) and not predicts(m4)
    e7, e4 = event_costs(m7, "int8"), event_costs(m4, "int8")
    assert e7["mispredict"] == m7.c("core.branch_mispredict") / m7.c("core.efficiency") and e4["mispredict"] == 0.0
    # M4: a zero weight takes the branch (1 + P refill); M7: a predicted taken branch costs one slot
    assert e4["use_z"] > e4["flag_nz"] and e7["use_z"] < e4["use_z"]


def conv_graph(o: int = 32, kh: int = 8, kw: int = 10, oh: int = 9, seed: int = 0) -> Graph:
    """x [1, oh + kh - 1, kw, 1] -> CONV_2D(w [o, kh, kw, 1] INT8) -> y [1, oh, 1, o]: each weight
    used at oh output pixels (the STM32F7 paper's conv has 9)."""
    rng = np.random.default_rng(seed)
    w = rng.integers(1, 128, size=(o, kh, kw, 1)) * rng.choice([-1, 1], size=(o, kh, kw, 1))
    q = Quantization((0.01,) * o, (0,) * o, 0)
    ts = (Tensor(0, "x", "INT8", (1, oh + kh - 1, kw, 1)),
          Tensor(1, "conv/w", "INT8", (o, kh, kw, 1), q, w.astype(np.int8).tobytes()),
          Tensor(2, "conv/b", "INT32", (o,), None, bytes(4 * o)),
          Tensor(3, "y", "INT8", (1, oh, 1, o)))
    sg = Subgraph("main", ts, (Operator(0, "CONV_2D", (0, 1, 2), (3,)),), (0,), (3,))
    return Graph("<conv>", (sg,))


def test_conv_mac_loop_is_the_im2col_kernels(m7):
    from tfdenoise.targets import cortexm
    from tfdenoise.targets.strategies import mac_loop

    la = group_layers(conv_graph())[0][0]
    assert la.kind == "conv" and la.macs == 9 * 32 * 80
    for prec in ("fp32", "q15", "int8"):
        loop = mac_loop(m7, la, prec)
        assert 0.3 * cortexm.core_cycles(m7, la, prec) < loop < cortexm.core_cycles(m7, la, prec)
    # int8 conv runs 16 MACs per iteration of arm_nn_mat_mult_kernel_s8_s16: cheaper per MAC than FC's 8
    fc = group_layers(fc_graph(random_fc(32, 80)))[0][0]
    assert mac_loop(m7, la, "int8") / la.macs < mac_loop(m7, fc, "int8") / fc.macs


def test_weight_first_pays_only_with_reuse_and_a_latency_bound_dense_loop(m7):
    """The one case where unstructured sparsity turns into speed (docs/design.md §9): weight-first
    on a conv (9 uses per weight test) against fp32's dense loop, bound by the VFMA chain."""
    from tfdenoise.targets.sparsity import Structure, sparsify
    from tfdenoise.targets.strategies import price_strategies

    g = conv_graph()
    p50 = price_strategies(sparsify(g, 0.5, Structure.UNSTRUCTURED), m7, ("dense", "skip-zero", "weight-first"))
    p90 = price_strategies(sparsify(g, 0.9, Structure.UNSTRUCTURED), m7, ("dense", "skip-zero", "weight-first"))
    assert p50.cycles("weight-first", "fp32") < p50.cycles("dense", "fp32")
    assert p90.cycles("weight-first", "fp32") < 0.6 * p90.cycles("dense", "fp32")
    for prec in ("q15", "int8"):                              # SIMD dense: no unstructured gain
        assert p50.cycles("weight-first", prec) > p50.cycles("dense", prec)
        assert p50.cycles("skip-zero", prec) > p50.cycles("dense", prec)
    assert p50.cycles("skip-zero", "fp32") > p50.cycles("dense", "fp32")   # per use: no amortization
