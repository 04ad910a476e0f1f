"""tools/cortexm_validation.py and tools/cortexm_nets.py: the rebuilt published networks have
the published MAC counts, the measurement file is complete and checked, one small network goes
through conversion and the cost model, and docs/boards.md is written from the rows."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from tfdenoise.errors import InputError

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def _load(name: str):
    if name in sys.modules:
        return sys.modules[name]
    sys.path.insert(0, str(TOOLS))
    spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


nets = _load("cortexm_nets")
val = _load("cortexm_validation")

# Written out layer by layer from the published architectures (not by the tool's formulas).
EXPECTED_MACS = {
    # 640-128-128-128-128-8-128-128-128-128-640
    "mlperf_ad": 640 * 128 + 3 * 128 * 128 + 128 * 8 + 8 * 128 + 3 * 128 * 128 + 128 * 640,
    # stem 32x32x16x27; stack 1: 2 x 32x32x16x144; stack 2: 16x16x32x144 + 16x16x32x288 + 1x1
    # 16x16x32x16; stack 3: 8x8x64x288 + 8x8x64x576 + 8x8x64x32; FC 64x10
    "mlperf_ic": (32 * 32 * 16 * 27 + 2 * 32 * 32 * 16 * 144 + 16 * 16 * 32 * 144
                  + 16 * 16 * 32 * 288 + 16 * 16 * 32 * 16 + 8 * 8 * 64 * 288 + 8 * 8 * 64 * 576
                  + 8 * 8 * 64 * 32 + 64 * 10),
    # conv 25x5x64x40; 4 x (DW 25x5x64x9 + PW 25x5x64x64); FC 64x12
    "mlperf_kws": 25 * 5 * 64 * 40 + 4 * (25 * 5 * 64 * 9 + 25 * 5 * 64 * 64) + 64 * 12,
    "wang_li_cnn": 476_576,  # docs/design.md §7
}


@pytest.mark.parametrize("key", sorted(nets.NETS))
def test_rebuilt_network_macs(key):
    net = nets.NETS[key]
    hand = net.hand_macs()
    assert nets.keras_macs(net.build()) == hand
    if key in EXPECTED_MACS:
        assert hand == EXPECTED_MACS[key]
    assert net.matches_published(hand) in (None, True)


def test_vww_and_mobilenet_counts():
    # MobileNet v1 1.0 / 224: the slim table's 569 M MACs (rounded); alpha 0.25 at 96: the stem
    # is 48x48x8x27 and the last pointwise 3x3x256x256.
    assert nets.NETS["mobilenet_v1_224"].hand_macs() == 568_740_352
    blocks = nets.mobilenet_v1_blocks(0.25)
    assert len(blocks) == 26 and blocks[-1] == ("pw", 256, 1, 1)
    assert nets.conv_stack_macs(96, 96, 3, [("conv", 8, 3, 2)])[0] == 48 * 48 * 8 * 27


def test_published_tolerance_catches_a_wrong_count():
    net = nets.NETS["mlperf_kws"]
    assert net.matches_published(2_656_768)
    assert not net.matches_published(2 * 2_656_768)


def test_measurement_file_is_complete():
    ms = val.load_measurements(val.DEFAULT_MEASUREMENTS)
    assert {m.network for m in ms} == set(nets.NETS)
    assert {m.board for m in ms} >= {"stm32f746", "stm32f767"}
    ref = [m for m in ms if m.engine_class == "tflm+cmsis-nn"]
    assert {m.network for m in ref} == {"mlperf_kws", "mlperf_ic", "mlperf_vww", "mlperf_ad"}
    assert all(m.freq_mhz == 120 and m.board in ("stm32l4r5", "stm32l476") for m in ref)


def test_device_board_is_the_first_existing_file(tmp_path):
    text = GOOD.replace('board = "stm32f746"', 'board = ["no_such_board", "stm32f746"]')
    m = val.load_measurements(_write(tmp_path, text))[0]
    assert m.board == "stm32f746" and "modelled by stm32f746" in m.device_note
    m = val.load_measurements(_write(tmp_path, GOOD.replace('"stm32f746"', '["cortex_a99"]')))[0]
    assert m.board == "cortex_a99"     # reported as not modelled by model_rows / board_markdown


def _write(tmp_path, text):
    p = tmp_path / "m.toml"
    p.write_text(text)
    return p


GOOD = """[devices.D]
board = "stm32f746"
[[measurement]]
network = "mlperf_ad"
precision = "int8"
device = "D"
freq_mhz = 216
engine = "e"
engine_class = "vendor"
measured_ms = 1.5
metric = "inference"
read = "READ"
source = "s"
"""


def test_bad_measurements_are_refused(tmp_path):
    assert len(val.load_measurements(_write(tmp_path, GOOD))) == 1
    for bad, what in ((GOOD.replace('network = "mlperf_ad"\n', ""), "lacks network"),
                      (GOOD.replace("mlperf_ad", "resnet50"), "unknown network"),
                      (GOOD.replace("measured_ms = 1.5", "measured_ms = 0"), "non-positive"),
                      (GOOD.replace('device = "D"', 'device = "X"'), "device not in"),
                      (GOOD.replace('board = "stm32f746"', "board = []"), "names no board"),
                      ("[devices]\n", r"no \[\[measurement"), ("x = [", "cannot read")):
        with pytest.raises(InputError, match=what) as e:
            val.load_measurements(_write(tmp_path, bad))
        assert "m.toml" in str(e.value)


def test_board_at_overrides_the_clock():
    b = val.board_at("stm32l476", 120)
    assert [op.freq_mhz for op in b.operating_points] == [120.0]
    assert val.board_at("no_such_board", 100) is None


@pytest.mark.slow
def test_small_network_end_to_end(tmp_path):
    """AD autoencoder: INT8 conversion (cached), cost model at two clocks, docs written."""
    ms = val.load_measurements(_write(tmp_path, GOOD + GOOD.replace("freq_mhz = 216", "freq_mhz = 108")
                                      .replace("[devices.D]\nboard = \"stm32f746\"\n", "")))
    rows, file_macs = val.model_rows(ms, tmp_path / "cache", rebuild=False)
    assert sum(file_macs["mlperf_ad"].values()) == EXPECTED_MACS["mlperf_ad"]
    assert set(file_macs) == {"mlperf_ad"} and set(file_macs["mlperf_ad"]) == {"dense"}
    assert (tmp_path / "cache" / "mlperf_ad_int8.tflite").is_file()
    fast, slow = rows
    assert fast.modeled_ms > 0 and fast.ratio == pytest.approx(fast.modeled_ms / 1.5)
    assert slow.modeled_ms == pytest.approx(2 * fast.modeled_ms, rel=0.05)   # half the clock
    text = val.markdown(rows, val.mac_check(file_macs), tmp_path / "m.toml")
    assert "## stm32f746" in text and f"{fast.ratio:.3f}" in text
    assert "`kernels.int8_fc_loop_cycles`" in text and "264,192" in text


def test_missing_board_is_reported_not_modelled(tmp_path):
    m = val.load_measurements(_write(tmp_path, GOOD.replace('board = "stm32f746"',
                                                            'board = "cortex_a99"')))[0]
    text = "\n".join(val.board_markdown("cortex_a99", [val.Row(m, None, "no board file cortex_a99.toml")]))
    assert "Not modelled: no board file cortex_a99.toml" in text and "| 1.5 |" in text
