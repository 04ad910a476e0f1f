"""Board description files (`targets/boards/*.toml`) -> validated `Board`.

Every constant is written as `{ value = ..., unit = "...", source = "..." }`. `SCHEMA` below
lists each key with the units it accepts and its allowed range (`OPTIONAL`: the keys a board
may leave out); a file may `inherits = "other"` and override any subset (deep merge). Errors
raise BoardError naming file and key.
"""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from tfdenoise.targets.types import Board, Constant, L3Memory, OperatingPoint
from tfdenoise.errors import BoardError

BOARD_DIR = Path(__file__).resolve().parent

# key -> (accepted units, min, max); max None = unbounded
SCHEMA: dict[str, tuple[tuple[str, ...], float, float | None]] = {
    "compute.cores": (("count",), 1, 1024),
    "compute.fpus": (("count",), 0, 1024),
    "compute.fpu_contention": (("ratio",), 0, 10),
    "kernels.int8_lstm_loop_macs": (("MAC",), 1, None),
    "kernels.int8_lstm_loop_cycles": (("cycle",), 1, None),
    "kernels.int8_gru_loop_macs": (("MAC",), 1, None),
    "kernels.int8_gru_loop_cycles": (("cycle",), 1, None),
    "kernels.int8_fc_loop_macs": (("MAC",), 1, None),
    "kernels.int8_fc_loop_cycles": (("cycle",), 1, None),
    "kernels.fp16_mac_ratio": (("ratio",), 0.01, 4),
    "kernels.fp32_mac_ratio": (("ratio",), 0.01, 4),
    "kernels.act_int8_cycles": (("cycle/elem",), 0, 1000),
    "kernels.act_fp16_cycles": (("cycle/elem",), 0, 1000),
    "kernels.elementwise_cycles": (("cycle/elem",), 0, 1000),
    "kernels.conversion_cycles": (("cycle/elem",), 0, 1000),
    "kernels.generic_efficiency": (("ratio",), 0.01, 1),
    "kernels.hybrid_dequant_cycles": (("cycle/elem",), 0, 1000),
    "memory.l1_size": (("B",), 0, None),
    "memory.l1_budget": (("B",), 0, None),
    "memory.core_stack": (("B",), 0, None),
    "memory.l2_size": (("B",), 1, None),
    "memory.l2_budget": (("B",), 1, None),
    "memory.dma_l2_l1": (("B/cycle",), 0, 1024),
    "memory.dma_efficiency": (("ratio",), 0.01, 1),
    "overhead.layer_cycles": (("cycle",), 0, None),
    "overhead.tile_cycles": (("cycle",), 0, None),
    "power.p_static_ref": (("mW",), 0, None),
    "power.v_ref": (("V",), 0.1, 5),
    "power.c_eff": (("mW/(V^2*MHz)",), 0, None),
    "power.sleep": (("mW",), 0, None),
    # feature extraction of keyword-spotting files, one frame per hop (targets/features.py)
    "features.fft_cycles": (("cycle/(point*stage)",), 0, 1000),
    "features.log_cycles": (("cycle/elem",), 0, 10000),
    "features.overhead_cycles": (("cycle",), 0, None),
    "features.sqrt_cycles": (("cycle/elem",), 0, 10000),
}
#: Keys a board may leave out: without them the model has no kernel for those layers and
#: prices them by the generic estimate (targets/cnn_kernels.py: the 8-core CNN kernels).
OPTIONAL: dict[str, tuple[tuple[str, ...], float, float | None]] = {
    "kernels.int4_unpack_cycles": (("cycle/elem",), 0, 1000),  # targets/int4.py: INT4 weights only
    "kernels.int8_conv_loop_macs": (("MAC",), 1, None),
    "kernels.int8_conv_loop_cycles": (("cycle",), 1, None),
    "kernels.int8_dw_loop_macs": (("MAC",), 1, None),
    "kernels.int8_dw_loop_cycles": (("cycle",), 1, None),
    "kernels.im2col_cycles": (("cycle/B",), 0, 1000),
    "kernels.requant_cycles": (("cycle/elem",), 0, 1000),
    "kernels.pool_max_cycles": (("cycle/elem",), 0, 1000),
    "kernels.pool_avg_cycles": (("cycle/elem",), 0, 1000),
    "kernels.div_cycles": (("cycle",), 0, 1000),
}
#: The core file a board names with ``core = "<name>"`` (targets/boards/cores/<name>.toml:
#: instruction timings of targets/cores.py), loaded as constants ``core.<key>``.
CORE_DIR = BOARD_DIR / "cores"
CORE_SCHEMA: dict[str, tuple[tuple[str, ...], float, float | None]] = {
    **{f"issue.{k}": (("instr/cycle",), 0.5, 8) for k in
       ("width", "mac_slots", "dsp_slots", "shift_slots", "load_slots", "fp_slots")},
    **{f"cycles.{k}": (("cycle",), 0, 100) for k in
       ("ldr", "ldr_next", "str", "alu", "shift", "dsp", "smlad", "mul", "mull", "vldr", "vstr", "vfma",
        "vfma_latency", "fop", "vdiv", "branch", "branch_not_taken", "branch_mispredict")},
    "compiler.unroll": (("count",), 1, 64),
    "compiler.call_cycles": (("cycle",), 0, 1000),
    "compiler.efficiency": (("ratio",), 0.01, 1),
    # loop strategies for sparse weights (targets/strategies.py)
    "strategies.branch_predictor": (("flag",), 0, 1),
}
CORE_FAMILIES = ("cortex-m", "cortex-a")
#: Board facts of a Cortex-M board (``[mcu]``; targets/cortexm.py): flash wait states per clock,
#: flash read width, data cache, activation memory.
MCU_SCHEMA: dict[str, tuple[tuple[str, ...], float, float | None]] = {
    "mcu.flash_ws_step": (("MHz",), 1, 1000),
    "mcu.flash_line_bytes": (("B",), 1, 1024),
    "mcu.flash_miss_overhead": (("cycle",), 0, 1000),
    "mcu.dcache_bytes": (("B",), 0, None),
    "mcu.dcache_line_bytes": (("B",), 1, 1024),
    "mcu.act_miss_cycles": (("cycle",), 0, 10000),
}
L3_SCHEMA: dict[str, tuple[tuple[str, ...], float, float | None]] = {
    "size": (("B",), 1, None),
    "bandwidth": (("B/cycle", "MB/s"), 1e-6, None),
    "efficiency": (("ratio",), 0.01, 1),
    "read_energy": (("pJ/B",), 0, None),
    "active_power": (("mW",), 0, None),
}
OP_SCHEMA = {"vdd": (("V",), 0.1, 5), "freq": (("MHz",), 1, 10000)}


def available_boards() -> list[str]:
    """Names of the board files shipped in `targets/boards/`."""
    return sorted(p.stem for p in BOARD_DIR.glob("*.toml"))


def load_board(name_or_path: str | Path) -> Board:
    """Load a board by name (`gap9`) or path to a .toml file, resolving `inherits`."""
    path = _resolve(name_or_path)
    raw = _load_merged(path, ())
    return _build(raw, path)


def _resolve(name_or_path: str | Path) -> Path:
    p = Path(name_or_path)
    if p.suffix == ".toml":
        if not p.is_file():
            raise BoardError("no such board file", p)
        return p
    cand = BOARD_DIR / f"{name_or_path}.toml"
    if not cand.is_file():
        raise BoardError(f"unknown board {name_or_path!r} (available: {', '.join(available_boards())})")
    return cand


def _load_merged(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    if path in chain:
        raise BoardError(f"inheritance cycle: {' -> '.join(p.stem for p in chain + (path,))}", path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise BoardError(f"invalid TOML: {exc}", path) from None
    parent = raw.pop("inherits", None)
    if parent is None:
        return raw
    if not isinstance(parent, str):
        raise BoardError("key 'inherits': expected a board name", path)
    parent_path = (path.parent / f"{parent}.toml")
    if not parent_path.is_file():
        raise BoardError(f"key 'inherits': no board {parent!r} next to this file", path)
    base = _load_merged(parent_path, chain + (path,))
    if "operating_points" in raw:
        base.pop("operating_points", None)
    return _merge(base, raw)


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and "value" not in v:
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _constant(path: Path, key: str, entry: Any, spec: tuple) -> Constant:
    units, lo, hi = spec
    if not isinstance(entry, dict) or not {"value", "unit", "source"} <= set(entry):
        raise BoardError(f"key {key!r}: expected {{ value, unit, source }}", path)
    value, unit, source = entry["value"], entry["unit"], entry["source"]
    if unit not in units:
        raise BoardError(f"key {key!r}: unit {unit!r} not accepted (expected {' or '.join(units)})", path)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BoardError(f"key {key!r}: value {value!r} is not a number", path)
    if value < lo or (hi is not None and value > hi):
        raise BoardError(f"key {key!r}: value {value} {unit} outside [{lo}, {hi if hi is not None else 'inf'}]", path)
    if not isinstance(source, str) or not source.strip():
        raise BoardError(f"key {key!r}: empty source", path)
    return Constant(value, unit, source)


def _build(raw: dict[str, Any], path: Path) -> Board:
    constants: dict[str, Constant] = {}
    for key, spec in SCHEMA.items():
        section, name = key.split(".")
        entry = raw.get(section, {}).get(name) if isinstance(raw.get(section), dict) else None
        if entry is None:
            raise BoardError(f"missing key {key!r}", path)
        constants[key] = _constant(path, key, entry, spec)
    for key, spec in OPTIONAL.items():
        section, name = key.split(".")
        entry = raw.get(section, {}).get(name) if isinstance(raw.get(section), dict) else None
        if entry is not None:
            constants[key] = _constant(path, key, entry, spec)
    for section in ("compute", "kernels", "memory", "overhead", "power", "features", "mcu"):
        for name in raw.get(section, {}):
            if f"{section}.{name}" not in SCHEMA and f"{section}.{name}" not in OPTIONAL \
                    and f"{section}.{name}" not in MCU_SCHEMA:
                raise BoardError(f"unknown key '{section}.{name}'", path)
    core, family = _load_core(raw, path, constants)
    ops = []
    for i, op in enumerate(raw.get("operating_points", [])):
        vals = {k: _constant(path, f"operating_points[{i}].{k}", op.get(k), s).value
                for k, s in OP_SCHEMA.items()}
        ops.append(OperatingPoint(float(vals["vdd"]), float(vals["freq"])))
    if not ops:
        raise BoardError("missing key 'operating_points'", path)
    l3s: dict[str, L3Memory] = {}
    for lname, entry in (raw.get("l3") or {}).items():
        vals = {}
        for k, s in L3_SCHEMA.items():
            key = f"l3.{lname}.{k}"
            c = _constant(path, key, entry.get(k) if isinstance(entry, dict) else None, s)
            constants[key] = c
            vals[k] = c
        l3s[lname] = L3Memory(lname, int(vals["size"].value), float(vals["bandwidth"].value),
                              vals["bandwidth"].unit == "B/cycle", float(vals["efficiency"].value),
                              float(vals["read_energy"].value), float(vals["active_power"].value))
    if not l3s:
        raise BoardError("missing key 'l3' (at least one parameter memory)", path)
    default_l3 = raw.get("default_l3", next(iter(l3s)))
    if default_l3 not in l3s:
        raise BoardError(f"key 'default_l3': {default_l3!r} is not one of {sorted(l3s)}", path)
    if constants["memory.l1_budget"].value > constants["memory.l1_size"].value:
        raise BoardError("key 'memory.l1_budget': larger than memory.l1_size", path)
    if constants["memory.l2_budget"].value > constants["memory.l2_size"].value:
        raise BoardError("key 'memory.l2_budget': larger than memory.l2_size", path)
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise BoardError("missing key 'name'", path)
    policy = raw.get("default_policy", "")
    if not isinstance(policy, str):
        raise BoardError("key 'default_policy': expected a promotion policy name", path)
    return Board(name=name, description=str(raw.get("description", "")), path=str(path),
                 operating_points=tuple(ops), l3=l3s, default_l3=default_l3, constants=constants,
                 core=core, core_family=family, default_policy=policy)


def _load_core(raw: dict[str, Any], path: Path, constants: dict[str, Constant]) -> tuple[str, str]:
    """The core file named by ``core = "..."`` into ``core.<key>`` constants, and for a
    Cortex-M core the board's ``[mcu]`` facts; ("", "") for boards without a core file."""
    core = raw.get("core")
    if core is None:
        return "", ""
    cpath = CORE_DIR / f"{core}.toml"
    if not isinstance(core, str) or not cpath.is_file():
        known = ", ".join(sorted(p.stem for p in CORE_DIR.glob("*.toml")))
        raise BoardError(f"key 'core': no core file {core!r} (known: {known})", path)
    try:
        craw = tomllib.loads(cpath.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise BoardError(f"invalid TOML: {exc}", cpath) from None
    family = craw.get("family")
    if family not in CORE_FAMILIES:
        raise BoardError(f"key 'family': {family!r} is not one of {', '.join(CORE_FAMILIES)}", cpath)
    for key, spec in CORE_SCHEMA.items():
        section, name = key.split(".")
        entry = craw.get(section, {}).get(name) if isinstance(craw.get(section), dict) else None
        if entry is None:
            raise BoardError(f"missing key {key!r}", cpath)
        constants[f"core.{name}"] = _constant(cpath, key, entry, spec)
    for section in ("issue", "cycles", "compiler", "strategies"):
        for name in craw.get(section, {}):
            if f"{section}.{name}" not in CORE_SCHEMA:
                raise BoardError(f"unknown key '{section}.{name}'", cpath)
    if family == "cortex-m":
        for key, spec in MCU_SCHEMA.items():
            entry = (raw.get("mcu") or {}).get(key.split(".")[1])
            if entry is None:
                raise BoardError(f"missing key {key!r} (a Cortex-M board needs its [mcu] facts)", path)
            constants[key] = _constant(path, key, entry, spec)
    return core, family
