"""Cost formulas against hand computations on tiny layers; board files; memory policies."""
from __future__ import annotations

import math

import pytest

from tfdenoise.targets.boards import BOARD_DIR, available_boards, load_board
from tfdenoise.targets.kernels import act_cycles, core_cycles, mac_cycles
from tfdenoise.targets.memory import POLICIES, plan_activations, plan_memory
from tfdenoise.targets.power import core_power_mw, estimate_power
from tfdenoise.targets.schedule import schedule, time_layer
from tfdenoise.targets.tiling import l1_usable, tile_layer
from tfdenoise.targets.types import Layer, ParamTensor, PromotionContext
from tfdenoise.errors import BoardError, InputError


def layer(name="l", kind="lstm", precision="int8", macs=2048, params=(), inputs=(0,), outputs=(1,),
          in_elems=32, out_elems=16, act=0, ew=0, units=16) -> Layer:
    base = 1000 * (1 + sum(map(ord, name)))
    ps = tuple(ParamTensor(base + i, f"{name}/p{i}", n, n) for i, n in enumerate(params))
    return Layer(0, name, kind, precision, (0,), macs, ps, inputs, outputs, in_elems, out_elems, act, ew, units)


def test_int8_lstm_kernel(gap9):
    # 4 gates x 16 units x (16 in + 16 state) = 2048 MACs; 8 cores x 16 MACs per 9-cycle loop
    assert mac_cycles(gap9, layer(macs=2048)) == math.ceil(2048 / (8 * 16)) * 9 == 144


def test_int8_gru_kernel(gap9):
    # 3 gates x 16 x 32 = 1536 MACs; 8 cores x 12 MACs per 7-cycle loop
    assert mac_cycles(gap9, layer(kind="gru", macs=1536)) == math.ceil(1536 / 96) * 7 == 112


def test_fp16_kernel_half_rate_plus_fpu_stall(gap9):
    # half the MACs per loop (8), 8 cores on 4 FPUs: stall 1 + 0.10 * (8/4 - 1)
    assert mac_cycles(gap9, layer(precision="fp16")) == pytest.approx(math.ceil(2048 / 64) * 9 * 1.1)


def test_activation_and_conversion_cycles(gap9):
    assert act_cycles(gap9, layer(act=80)) == 80 * 2 / 8                    # INT8 LUT, 2 cycles/elem/core
    assert act_cycles(gap9, layer(act=80, precision="fp16")) == pytest.approx(80 * 8 * 1.1 / 8)
    conv = layer(kind="conversion", macs=0, ew=256)
    assert core_cycles(gap9, conv) == 256 * 2 / 8


def test_tiling_hand_computed(gap9):
    assert l1_usable(gap9) == 120000 - 1024 * 9
    la = layer(params=(200_000,), in_elems=100, out_elems=100)
    plan = plan_memory([la], {0: 100, 1: 100}, gap9, "emram")
    t = tile_layer(gap9, la, plan)
    room = (120000 - 9216) // 2 - 200
    assert t.n_tiles == math.ceil(200_000 / room) == 4


def test_schedule_formula_streamed_layer(gap9):
    """t = N * max(t_L3, t_L2, t_core) + overheads, by hand, for a fully streamed layer."""
    big = layer(params=(600_000,), macs=600_000, in_elems=300, out_elems=256)
    filler = layer(name="filler", kind="dense", params=(800_000,), macs=0, inputs=(1,), outputs=(2,))
    plan = plan_memory([filler, big], {0: 300, 1: 256, 2: 16}, gap9, "emram")
    assert plan.streamed_bytes["l"] == 600_000
    op = gap9.operating_point(0.65)
    t = tile_layer(gap9, big, plan)
    timing = time_layer(gap9, op, plan, big, t)
    n = t.n_tiles
    b3 = 640 * 0.565 / 240                       # eMRAM B/cycle at 240 MHz
    t3 = int(600_000 / n) / b3
    t2 = int(600_000 / n + 556) / (8 * 0.75)
    tc = core_cycles(gap9, big) / n
    assert timing.bound == "dma_l3"
    assert timing.cycles == math.ceil(n * max(t3, t2, tc) + 3000 + 150 * n)
    # 370 MHz: same bytes, more cycles for the eMRAM-bound layer
    assert time_layer(gap9, gap9.operating_point(0.8), plan, big, t).cycles > timing.cycles


def test_activation_arena_reuses_dead_tensors():
    a = layer("a", inputs=(0,), outputs=(1,), in_elems=100, out_elems=100)
    b = layer("b", inputs=(1,), outputs=(2,), in_elems=100, out_elems=100)
    c = layer("c", inputs=(2,), outputs=(3,), in_elems=100, out_elems=100)
    arena, bufs = plan_activations([a, b, c], {0: 100, 1: 100, 2: 100, 3: 100})
    # t0 (graph input) lives [0,0], t1 [0,1], t2 [1,2], t3 (output) [2,2]: 2 live at a time
    assert arena == 200
    assert len(bufs) == 4


def test_promotion_policies(gap9):
    ls = [layer("a", params=(400,)), layer("b", params=(500,)), layer("c", params=(300,))]
    names = lambda s: {la.name for la in ls if all(p.tensor in s for p in la.params)}  # noqa: E731
    ctx = lambda room: PromotionContext(gap9, gap9.operating_point(None), "emram", tuple(ls), room)  # noqa: E731
    assert names(POLICIES["layer-order"](ctx(800)).tensors) == {"a", "c"}
    assert names(POLICIES["largest-first"](ctx(800)).tensors) == {"b", "c"}
    assert names(POLICIES["smallest-first"](ctx(800)).tensors) == {"c", "a"}
    assert POLICIES["none"](ctx(10_000)).tensors == frozenset()


def test_does_not_fit_is_a_verdict(gap9):
    la = layer(params=(3_000_000,))
    plan = plan_memory([la], {0: 32, 1: 16}, gap9, "emram")
    assert not plan.fits and "exceed L3 emram" in plan.reasons[0] and "--l3 flash" in plan.reasons[0]
    with pytest.raises(InputError, match="policy"):
        plan_memory([la], {0: 32, 1: 16}, gap9, "flash", policy="bogus")


def test_power_fit_reproduces_spec_points(gap9):
    assert core_power_mw(gap9, gap9.operating_point(0.8)) == pytest.approx(56.3, abs=0.1)
    assert core_power_mw(gap9, gap9.operating_point(0.65)) == pytest.approx(25.4, abs=0.1)


def test_energy_and_average_power(gap9):
    la = layer(params=(1000,))
    plan = plan_memory([la], {0: 32, 1: 16}, gap9, "emram")
    op = gap9.operating_point(0.65)
    s = schedule(gap9, op, plan, [la], [tile_layer(gap9, la, plan)])
    p = estimate_power(gap9, op, plan, s)
    assert p.energy_uj == pytest.approx(p.power_mw * s.latency_ms)
    assert p.avg_power_mw_at_hop == pytest.approx((p.energy_uj + 0.1 * (6.25 - s.latency_ms)) / 6.25)


def test_boards_load_and_inherit():
    assert {"gap9", "gap9_flash", "stm32f746", "stm32l476"} <= set(available_boards())
    g, gf, l4 = load_board("gap9"), load_board("gap9_flash"), load_board("stm32l476")
    assert gf.default_l3 == "flash" and gf.c("memory.l2_budget") == g.c("memory.l2_budget")
    assert l4.c("compute.cores") == 1 and l4.operating_points[0].freq_mhz == 80
    assert all(c.source for b in (g, gf, l4) for c in b.constants.values())


@pytest.mark.parametrize("edit,match", [
    (lambda s: s.replace('cores = { value = 8, unit = "count"', 'cores = { value = 8, unit = "MHz"'), "compute.cores.*unit"),
    (lambda s: s.replace('l2_budget = { value = 1000000', 'l2_budget = { value = -5'), "memory.l2_budget.*outside"),
    (lambda s: s.replace("[overhead]\n", "[overhead]\nbogus = { value = 1, unit = \"cycle\", source = \"x\" }\n"), "unknown key 'overhead.bogus'"),
    (lambda s: "\n".join(ln for ln in s.splitlines() if not ln.startswith("tile_cycles")), "missing key 'overhead.tile_cycles'"),
    (lambda s: s.replace('source = "docs/design.md §5: L1 128 kB"', 'source = ""'), "memory.l1_size.*empty source"),
    (lambda s: s.replace('name = "gap9"', 'name = "gap9"\ninherits = "loop"'), "inheritance cycle|no board"),
    (lambda s: s + "\n[[[", "invalid TOML"),
])
def test_board_validation(tmp_path, edit, match):
    text = (BOARD_DIR / "gap9.toml").read_text()
    p = tmp_path / "loop.toml"
    p.write_text(edit(text))
    with pytest.raises(BoardError, match=match) as err:
        load_board(p)
    assert "loop.toml" in str(err.value) or "unknown board" in str(err.value)


def test_unknown_board_and_operating_point(gap9):
    with pytest.raises(BoardError, match="unknown board"):
        load_board("nrf52")
    with pytest.raises(InputError, match="operating point"):
        gap9.operating_point(1.2)
