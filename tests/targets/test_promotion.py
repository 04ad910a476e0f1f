"""L2 promotion strategies (targets/promotion.py, docs/promotion.md): time-per-byte, row splits in
whole L1 tiles, first-tile prefetch; hand-computed on tiny layer lists, invariants on the
shipped models, the reference policies and the demo figures unchanged."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest

from tfdenoise.targets import analyze
from tfdenoise.targets.boards import load_board
from tfdenoise.targets.kernels import core_cycles
from tfdenoise.targets.memory import POLICIES, plan_memory
from tfdenoise.targets.pipeline import analyze_graph
from tfdenoise.targets.promotion import PREFETCH, by_time_per_byte, l3_saving, parse_policy
from tfdenoise.targets.reader import read_tflite
from tfdenoise.targets.schedule import prefetch_savings, prefetch_window, schedule, time_layer
from tfdenoise.targets.tiling import rows_per_tile, tile_layer
from tfdenoise.targets.types import Constant, Layer, ParamTensor, PromotionContext
from tfdenoise.errors import InputError

BASELINE = Path(__file__).with_name("promotion_baseline.json")
B3 = 640 * 0.565 / 240          # gap9 eMRAM at 0.65 V / 240 MHz, B/cycle
B2 = 8 * 0.75                   # cluster DMA L2 -> L1, B/cycle
OVERHEAD = 3000 + 150           # layer_cycles + tile_cycles x 1 tile
NEW = ("time-per-byte", "time-per-byte-split")


@pytest.fixture(scope="module")
def op(gap9):
    return gap9.operating_point(0.65)


def layer(name: str, params: tuple[int, ...], macs: int, index: int, kind: str = "dense", units: int = 0,
          inputs: tuple[int, ...] = (0,), outputs: tuple[int, ...] = (1,)) -> Layer:
    """An INT8 layer of 100 input and 100 output elements (io = 200 B)."""
    ps = tuple(ParamTensor(100 * (index + 1) + i, f"{name}/p{i}", n, n) for i, n in enumerate(params))
    return Layer(index, name, kind, "int8", (index,), macs, ps, inputs, outputs, 100, 100, units=units)


def with_budget(board, budget: int):
    """`board` with another L2 budget for the network."""
    return dataclasses.replace(board, constants={**board.constants,
                                                 "memory.l2_budget": Constant(budget, "B", "test")})


def chain(*specs) -> list[Layer]:
    """Layers in execution order, each reading the previous one's output."""
    return [layer(name, params, macs, i, inputs=(i,), outputs=(i + 1,)) for i, (name, params, macs) in enumerate(specs)]


def test_time_per_byte_ratio_and_choice(gap9, op):
    """30 kB each, one tile: z is compute-bound (saves 0), y waits on L3 a little, x a lot; w
    (200 kB, L3-bound) never fits. layer-order takes z and y (execution order); time-per-byte
    takes x and y."""
    ls = chain(("z", (30_000,), 400_000), ("y", (30_000,), 200_000), ("x", (30_000,), 1000),
               ("w", (200_000,), 1000))
    ctx = PromotionContext(gap9, op, "emram", tuple(ls), 65_000)
    t3, t2 = 30_000 / B3, 30_200 / B2
    for la in ls[:3]:
        tc = core_cycles(gap9, la)
        want = max(0, math.ceil(max(t3, t2, tc) + OVERHEAD) - math.ceil(max(t2, tc) + OVERHEAD))
        assert l3_saving(ctx, la) == want
    assert l3_saving(ctx, ls[0]) == 0 and l3_saving(ctx, ls[2]) > l3_saving(ctx, ls[1]) > 0
    assert [la.name for _, la in by_time_per_byte(ctx)] == ["w", "x", "y", "z"]
    name = {p.tensor: la.name for la in ls for p in la.params}
    assert {name[t] for t in POLICIES["time-per-byte"](ctx).tensors} == {"x", "y"}
    assert {name[t] for t in POLICIES["layer-order"](ctx).tensors} == {"z", "y"}
    # the same room through plan_memory: a budget that leaves exactly 65 kB after activations
    # (200 B) and the streaming buffer (2 tiles of 55,192 B, w's)
    board = with_budget(gap9, 200 + 2 * 55_192 + 65_000)
    elems = dict.fromkeys(range(5), 100)
    cycles = {}
    for p in ("layer-order", "time-per-byte"):
        plan = plan_memory(ls, elems, board, "emram", p, op)
        assert {name[t] for t in plan.promoted} == ({"x", "y"} if p == "time-per-byte" else {"z", "y"})
        cycles[p] = schedule(board, op, plan, ls, [tile_layer(board, la, plan) for la in ls]).total_cycles
    assert cycles["layer-order"] - cycles["time-per-byte"] == l3_saving(ctx, ls[2])


def test_split_promotes_whole_tiles_of_rows(gap9, op):
    """LSTM, 64 units = 256 rows of 1004 B; a tile holds 54 rows; 120 kB of room: time-per-byte
    takes the 1 kB bias, the split then the rows of 2 tiles of the two 128 kB tensors."""
    la = layer("s", (128_000, 128_000, 1_024), 10_000, 0, kind="lstm", units=64)
    assert rows_per_tile(gap9, la) == (55_392 - 200) // 1004 == 54
    ctx = PromotionContext(gap9, op, "emram", (la,), 120_000)
    bias = la.params[2].tensor
    assert POLICIES["time-per-byte"](ctx).tensors == {bias}
    pick = POLICIES["time-per-byte-split"](ctx)
    assert pick.tensors == {bias} and pick.resident_tiles == {"s": 2}
    board = with_budget(gap9, 200 + 2 * 55_192 + 120_000)
    plan = plan_memory([la], {0: 100, 1: 100}, board, "emram", "time-per-byte-split", op)
    rows = 2 * 54
    assert plan.partial == {la.params[0].tensor: 128_000 * rows // 256, la.params[1].tensor: 128_000 * rows // 256}
    assert plan.streamed_bytes["s"] == 256_000 - 2 * 54_000
    assert plan.promoted_bytes == 1_024 + 2 * 54_000 <= 120_000
    assert plan.rho_l3 == pytest.approx((256_000 - 2 * 54_000) / 257_024)
    assert plan.l2_bytes_used == 200 + 2 * 55_192 + 1_024 + 2 * 54_000 <= plan.l2_budget and plan.fits
    tiling = tile_layer(board, la, plan)
    resident_rows = sum(p.nbytes * rows // 256 for p in la.params)       # R_k, all tensors
    rest = 257_024 - resident_rows
    assert tiling.groups[-1].n_tiles == 2 and tiling.groups[-1].l3_bytes == 0
    assert tiling.groups[-1].l2_bytes == int((resident_rows + 200 * resident_rows / 257_024) / 2)
    # the rest: ceil(rest / tile) = 3 tiles, all streamed by proportion (round(3 x 148,000 / rest)),
    # plus one resident tile for the bias rows outside the 2 tiles (the rule of tensor-order)
    n_rest = math.ceil(rest / 55_192)
    assert n_rest == round(n_rest * 148_000 / rest) == 3
    assert [(g.n_tiles, g.l3_bytes) for g in tiling.groups] == [(3, 148_000 // 3), (1, 0), (2, 0)]
    unsplit = plan_memory([la], {0: 100, 1: 100}, board, "emram", "time-per-byte", op)
    t_split = time_layer(board, op, plan, la, tiling).cycles
    assert t_split < time_layer(board, op, unsplit, la, tile_layer(board, la, unsplit)).cycles


def test_prefetch_rule():
    assert prefetch_savings([0, 5.0, 7.0, 2.0], [3.0, 10.0, 1.0, 100.0]) == (0, 3, 7, 1)
    assert prefetch_savings([9.0], [9.0]) == (0,)      # the first layer has no layer before


@pytest.mark.parametrize("r_macs", [1000, 400_000])
def test_prefetch_saving_is_min_of_exposed_and_idle(gap9, op, r_macs):
    """r resident (its L3 DMA idle for all its cycles) then s streamed and L3-bound: s saves
    min(exposed L3 time of its first tile, r's cycles); small r: r's cycles bind, big r: s's.
    (w, 200 kB, streams too: it keeps the model from fitting L2 whole.)"""
    ls = chain(("r", (30_000,), r_macs), ("s", (30_000,), 1000), ("w", (200_000,), 1000))
    board = with_budget(gap9, 200 + 2 * 55_192 + 40_000)
    elems = dict.fromkeys(range(4), 100)
    plain = plan_memory(ls, elems, board, "emram", "layer-order", op)
    pre = plan_memory(ls, elems, board, "emram", "layer-order" + PREFETCH, op)
    assert pre.prefetch and not plain.prefetch and pre.promoted == plain.promoted
    assert plain.streamed_bytes == {"r": 0, "s": 30_000, "w": 200_000}
    tilings = [tile_layer(board, la, plain) for la in ls]
    base, fast = (schedule(board, op, p, ls, tilings).layers for p in (plain, pre))
    r_cycles = math.ceil(max(30_200 / B2, core_cycles(gap9, ls[0])) + OVERHEAD)
    exposed = 30_000 / B3 - max(30_200 / B2, core_cycles(gap9, ls[1]))
    assert base[0].cycles == r_cycles and base[1].cycles == math.ceil(30_000 / B3 + OVERHEAD)
    saved = math.floor(min(exposed, r_cycles))
    assert fast[1].prefetch_cycles == saved and fast[1].cycles == base[1].cycles - saved
    assert fast[0] == base[0]
    assert saved == (r_cycles if r_macs == 1000 else math.floor(exposed))


def test_prefetch_window_of_a_streaming_layer(gap9, op):
    """A compute-bound layer streaming 2 tiles frees a streaming slot only in its last step:
    window = min(cycles - dma_l3, cycles - (N_s - 1) * step), here the slot binds."""
    la = layer("c", (90_000,), 3_000_000, 0)
    plan = plan_memory([la], {0: 100, 1: 100}, gap9, "emram", "none", op)
    tiling = tile_layer(gap9, la, plan)
    timing = time_layer(gap9, op, plan, la, tiling)
    (g,) = tiling.groups
    step = max(g.l3_bytes / B3, g.l2_bytes / B2, core_cycles(gap9, la) / g.n_tiles)
    assert g.n_tiles == 2 and step == core_cycles(gap9, la) / 2            # compute-bound
    slot, idle = timing.cycles - step, timing.cycles - timing.dma_l3_cycles
    assert slot < idle
    assert prefetch_window(gap9, op, "emram", la, tiling, timing) == pytest.approx(slot)


def test_policy_names(gap9):
    """parse_policy splits the suffix; plan_memory takes a +prefetch name and refuses a doubled
    suffix or a suffix on an unknown base."""
    assert {"time-per-byte", "time-per-byte-split"} <= set(POLICIES)
    assert parse_policy("none+prefetch") == ("none", True) and parse_policy("none") == ("none", False)
    assert parse_policy("time-per-byte-split" + PREFETCH) == ("time-per-byte-split", True)
    ls = chain(("a", (400,), 1000))
    assert plan_memory(ls, {0: 100, 1: 100}, gap9, "emram", "tensor-order" + PREFETCH).prefetch
    for bad in ("tensor-order" + PREFETCH + PREFETCH, "nonsense" + PREFETCH):
        with pytest.raises(InputError, match="unknown promotion policy"):
            plan_memory(ls, {0: 100, 1: 100}, gap9, "emram", bad)


def shipped(variant: str, precision: str) -> Path:
    from tfdenoise.pretrained import tflite

    return tflite(variant, precision)


@pytest.mark.parametrize("variant", ["lstm128", "lstm256", "gru128", "gru256"])
@pytest.mark.parametrize("precision", ["mixed", "fp16"])
def test_invariants_on_shipped_models(gap9, variant, precision):
    """Within the L2 budget; time-per-byte never slower than no promotion; the split promotes at
    least what time-per-byte does; prefetch never slower and leaves the memory plan alone."""
    graph = read_tflite(shipped(variant, precision))
    for vdd in (0.65, 0.8):
        for l3 in gap9.l3:
            run = {p: analyze_graph(graph, gap9, vdd, l3, p) for p in POLICIES}
            none = run["none"].schedule.total_cycles
            for p, r in run.items():
                m = r.memory
                assert m.l2_bytes_used <= m.l2_budget      # (fp16 LSTM256 > 2 MB eMRAM: an L3 overflow)
                assert 0 <= m.promoted_bytes <= m.l2_budget - m.activation_bytes - m.stream_buffer_bytes
                assert sum(b.size for b in m.buffers if b.kind == "promoted") >= m.promoted_bytes
                base, prefetch = parse_policy(p)
                if base in NEW:
                    assert r.schedule.total_cycles <= none, (p, vdd, l3)
                if prefetch:
                    plain = run[base]
                    assert r.schedule.total_cycles <= plain.schedule.total_cycles
                    assert (m.promoted, m.partial, m.rho_l3) == (plain.memory.promoted, plain.memory.partial,
                                                                 plain.memory.rho_l3)
            assert run["time-per-byte-split"].memory.promoted_bytes >= run["time-per-byte"].memory.promoted_bytes


def test_reference_policies_unchanged():
    """The reference policies give the numbers stored before the promotion strategies were added
    (tools/promotion_table.py --baseline, run on the code of commit 07fb9e6)."""
    stored = json.loads(BASELINE.read_text())
    from tfdenoise.pretrained import PRETRAINED_DIR
    from tfdenoise.targets.report import to_json

    graphs, boards = {}, {}
    for key, want in stored.items():
        name, board, vdd, l3, policy = key.split("|")
        graph = graphs.setdefault(name, read_tflite(PRETRAINED_DIR / name.split("_")[0] / "tflite" / name))
        b = boards.setdefault(board, load_board(board))
        op = b.operating_point(float(vdd))
        j = to_json(analyze_graph(graph, b, op.vdd, l3, policy, freq_mhz=op.freq_mhz))
        assert [j["total_cycles"], j["energy_uj"], j["rho_l3"], j["l2_bytes_used"]] == want, key
    assert len(stored) == 4 * 3 * (2 * 2 + 1 * 2) * 5   # files x (gap9: 2 points x 2 L3, stm32f767: 1 x 2) x policies


def test_demo_figures_unchanged(tmp_path):
    """`make demo` [4/5]: the mixed LSTM128 on gap9 at the board's defaults, 0.365 ms and 20.5 uJ;
    `tfdenoise report` prints the same (layer-order, eMRAM, 0.8 V)."""
    import argparse

    from tfdenoise.commands import report as cmd

    r = analyze(shipped("lstm128", "mixed"), board="gap9")
    assert (r.memory.policy, r.memory.l3, r.op.vdd) == ("layer-order", "emram", 0.8)
    assert (round(r.schedule.latency_ms, 3), round(r.power.energy_uj, 1)) == (0.365, 20.5)
    p = argparse.ArgumentParser()
    cmd.add_parser(p.add_subparsers())
    assert cmd.run(p.parse_args(["report", "--json", str(tmp_path / "r.json")])) == 0
    j = json.loads((tmp_path / "r.json").read_text())
    assert (round(j["latency_ms"], 3), round(j["energy_uj"], 1), j["policy"]) == (0.365, 20.5, "layer-order")


def test_report_selects_every_policy(tmp_path):
    """`tfdenoise report --policy NAME` for a new strategy (and its +prefetch) on LSTM256."""
    import argparse

    from tfdenoise.commands import report as cmd

    p = argparse.ArgumentParser()
    cmd.add_parser(p.add_subparsers())
    for policy in ("time-per-byte-split", "time-per-byte-split" + PREFETCH):
        out = tmp_path / f"{policy}.json"
        assert cmd.run(p.parse_args(["report", "--pretrained", "lstm256", "--vdd", "0.65",
                                     "--policy", policy, "--json", str(out)])) == 0
        j = json.loads(out.read_text())
        assert j["policy"] == policy and j["fits"] and 0 < j["rho_l3"] < 1
