"""Sparsity of weight tensors (`targets.sparsity`) and loop-strategy pricing
(`targets.strategies`) for `report --strategy`. Re-exported by `targets.types`.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class WeightSparsity:
    """Zero structure of one weight tensor, read from its data (targets/sparsity.py).

    The tensor is viewed as `outputs` x `rows_per_output` rows of `row_len` weights along the
    input axis (FC [O, I]: O x 1 x I; conv [O, KH, KW, C]: O x KH x KW*C, one kernel row;
    depthwise [1, KH, KW, C]: C x KH x KW).  `blocks`: ((height, width), blocks, all-zero
    blocks) on the [outputs, inputs] matrix (width along the input axis; partial blocks at the
    edges count their real elements only).
    """

    tensor: int
    name: str
    dtype: str
    shape: tuple[int, ...]
    elements: int
    zeros: int
    outputs: int
    rows: int                 # outputs x rows per output
    row_len: int
    zero_rows: int            # rows whose every weight is zero
    zero_outputs: int         # outputs (filters / units) whose every weight is zero
    mn_groups: int            # groups of 4 consecutive weights along the input axis
    mn_ok: int                # groups with at most 2 nonzeros (2:4 compliant)
    switches: int             # zero <-> nonzero changes between neighbours along each row
    row_switches: int = 0     # zero-row <-> nonzero-row changes between consecutive rows (output-major)
    blocks: tuple[tuple[tuple[int, int], int, int], ...] = ()

    @property
    def zero_fraction(self) -> float:
        return self.zeros / self.elements if self.elements else 0.0

    @property
    def zero_row_fraction(self) -> float:
        return self.zero_rows / self.rows if self.rows else 0.0

    @property
    def mn_compliance(self) -> float:
        """Share of the 4-weight groups that satisfy 2:4 (1.0: the tensor is 2:4 sparse)."""
        return self.mn_ok / self.mn_groups if self.mn_groups else 1.0


@dataclass(frozen=True)
class LayerSparsity:
    """Zero structure of the weight tensors of one layer (biases and vectors excluded)."""

    layer: str
    tensors: tuple[WeightSparsity, ...]

    def _sum(self, attr: str) -> int:
        return sum(getattr(t, attr) for t in self.tensors)

    @property
    def elements(self) -> int:
        return self._sum("elements")

    @property
    def zeros(self) -> int:
        return self._sum("zeros")

    @property
    def zero_fraction(self) -> float:
        return self.zeros / self.elements if self.elements else 0.0

    @property
    def zero_row_fraction(self) -> float:
        rows = self._sum("rows")
        return self._sum("zero_rows") / rows if rows else 0.0

    @property
    def mn_compliance(self) -> float:
        groups = self._sum("mn_groups")
        return self._sum("mn_ok") / groups if groups else 1.0

    def block_zero_fraction(self, shape: tuple[int, int]) -> float:
        """Share of all-zero blocks of `shape` over the layer's weight tensors (0.0 if not counted)."""
        n = z = 0
        for t in self.tensors:
            for s, blocks, zero in t.blocks:
                if tuple(s) == tuple(shape):
                    n, z = n + blocks, z + zero
        return z / n if n else 0.0


@dataclass(frozen=True)
class StrategyCycles:
    """Cycles of one layer with weights under one loop strategy and code precision
    (targets/strategies.py)."""

    layer: str
    strategy: str
    precision: str        # code precision: fp32 | q15 | int8
    cycles: int
    macs: int             # MACs executed (the skipping strategies execute only the kept ones)
    tests: int            # zero tests (compare + branch) executed
    mispredicts: int      # of those, branches modeled as mispredicted


@dataclass(frozen=True)
class StrategyPricing:
    """Every (loop strategy, code precision) of one model on one Cortex-M board."""

    model: str
    board: str
    freq_mhz: float
    strategies: tuple[str, ...]
    precisions: tuple[str, ...]
    layers: tuple[StrategyCycles, ...]              # layers with weights only
    other_cycles: dict[str, int]                    # code precision -> layers without weights
    sparsity: dict[str, LayerSparsity] = field(default_factory=dict)

    def cycles(self, strategy: str, precision: str) -> int:
        """Whole inference: the weight layers under `strategy` plus the other layers."""
        return self.other_cycles[precision] + sum(
            c.cycles for c in self.layers if c.strategy == strategy and c.precision == precision)

    def latency_ms(self, strategy: str, precision: str) -> float:
        return self.cycles(strategy, precision) / (self.freq_mhz * 1e3)
