"""The board description every pipeline step reads (loaded by `targets.boards`): constants with
units and sources, parameter memories, operating points. Re-exported by `targets.types`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Constant:
    """One board constant: value, unit and where it comes from."""

    value: Any
    unit: str
    source: str


@dataclass(frozen=True)
class L3Memory:
    """A non-volatile parameter memory (external flash, eMRAM, internal flash)."""

    name: str
    size: int                 # B
    bandwidth: float          # B/cycle if clock_scaled else MB/s
    clock_scaled: bool        # True: bandwidth given in B/cycle (scales with the clock)
    efficiency: float         # sustained / peak
    read_energy_pj: float     # pJ/B
    active_power_mw: float    # mW while streaming, on top of the read energy

    def bytes_per_cycle(self, freq_mhz: float) -> float:
        """Sustained read bandwidth in B per cluster cycle at `freq_mhz`."""
        peak = self.bandwidth if self.clock_scaled else self.bandwidth / freq_mhz
        return peak * self.efficiency


@dataclass(frozen=True)
class OperatingPoint:
    vdd: float       # V
    freq_mhz: float  # MHz


@dataclass(frozen=True)
class Board:
    """A target MCU: every number the cost model uses, with units and sources in `constants`."""

    name: str
    description: str
    path: str
    operating_points: tuple[OperatingPoint, ...]
    l3: dict[str, L3Memory]
    default_l3: str
    constants: dict[str, Constant] = field(default_factory=dict)
    core: str = ""            # core file (targets/boards/cores/<core>.toml), "" for gap9-style boards
    core_family: str = ""     # cortex-m (targets/cortexm.py) | cortex-a (targets/neon.py) | ""
    default_policy: str = ""  # L2 promotion policy when none is asked for ("" = memory.DEFAULT_POLICY)

    def c(self, key: str) -> Any:
        """Value of constant `key` (e.g. "memory.l2_budget")."""
        return self.constants[key].value

    def operating_point(self, vdd: float | None, freq_mhz: float | None = None) -> OperatingPoint:
        """The operating point at supply `vdd` (default: the board's first), run at `freq_mhz`
        (default: the point's own clock, which is also the highest allowed at that supply)."""
        from tfdenoise.errors import InputError

        op = self.operating_points[0] if vdd is None else \
            next((o for o in self.operating_points if abs(o.vdd - vdd) < 1e-6), None)
        if op is None:
            known = ", ".join(f"{o.vdd:g}" for o in self.operating_points)
            raise InputError(f"board {self.name} has no operating point at {vdd:g} V (known: {known})")
        if freq_mhz is None:
            return op
        if not (math.isfinite(freq_mhz) and 0 < freq_mhz <= op.freq_mhz):
            raise InputError(f"--freq {freq_mhz:g} MHz is outside board {self.name}'s range at "
                             f"{op.vdd:g} V (0 < f <= {op.freq_mhz:g} MHz)")
        return OperatingPoint(op.vdd, float(freq_mhz))
