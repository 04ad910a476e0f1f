"""Frozen dataclasses that flow between the pipeline steps (see `targets.pipeline`).

read (graph.Graph) -> layers (Layer) -> memory (MemoryPlan) -> tiling (Tiling)
-> schedule (LayerTiming, Schedule) -> power (PowerEstimate) -> Report.
The board description (`Board`, loaded by `targets.boards`) is an input of every step.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from tfdenoise.vocab import BufferKind, LayerKind, Precision

#: bytes per activation element for each kernel precision on the MCU (hybrid layers keep
#: FP32 activations: only their weights are INT8, docs/design.md §4)
ACT_BYTES: dict[Precision, int] = {Precision.INT8: 1, Precision.FP16: 2, Precision.FP32: 4,
                                   Precision.HYBRID: 4}


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


@dataclass(frozen=True)
class ParamTensor:
    """A constant tensor a layer reads at run time (weights, biases)."""

    tensor: int
    name: str
    nbytes: int
    elements: int


@dataclass(frozen=True)
class ConvGeometry:
    """Shapes of a convolution-like operator (NHWC), read from its tensors (targets/geometry.py).

    conv: out_ch filters of k_h x k_w x in_ch; depthwise: one k_h x k_w filter per output channel
    (out_ch = in_ch x depth multiplier); pool: a k_h x k_w window per output element.
    """

    op: str             # TFLite opcode of the operator (CONV_2D, DEPTHWISE_CONV_2D, ...)
    in_h: int
    in_w: int
    in_ch: int
    out_h: int
    out_w: int
    out_ch: int
    k_h: int
    k_w: int

    @property
    def outputs(self) -> int:
        """Output elements: out_h x out_w x out_ch."""
        return self.out_h * self.out_w * self.out_ch

    @property
    def patch(self) -> int:
        """Input elements (= MACs or window reads) behind one output element."""
        return self.k_h * self.k_w * (self.in_ch if self.op in ("CONV_2D", "TRANSPOSE_CONV") else 1)


@dataclass(frozen=True)
class Layer:
    """One kernel the MCU runs: a group of TFLite operators with a cost-model kind."""

    index: int
    name: str
    kind: LayerKind
    precision: Precision
    ops: tuple[int, ...]
    macs: int
    params: tuple[ParamTensor, ...]
    inputs: tuple[int, ...]    # activation tensors read (produced outside the layer)
    outputs: tuple[int, ...]   # activation tensors written (read outside the layer / graph outputs)
    in_elems: int
    out_elems: int
    act_elems: int = 0         # transcendental activations (sigmoid/tanh/exp...): LUT or approximation
    ew_elems: int = 0          # other element-wise operations (add, mul, conversions, pooling...)
    units: int = 0
    estimate: bool = False     # True: generic estimate, not a calibrated kernel model
    note: str = ""
    dequant_elems: int = 0     # hybrid only: INT8/INT4 weight elements converted to float per inference
    geometry: ConvGeometry | None = None   # conv / depthwise / pooling layers: shapes of the main op

    @property
    def param_bytes(self) -> int:
        return sum(p.nbytes for p in self.params)

    @property
    def param_elements(self) -> int:
        return sum(p.elements for p in self.params)


@dataclass(frozen=True)
class Buffer:
    """A region of L2: activation tensor, promoted parameter, or reserved buffer."""

    name: str
    kind: BufferKind
    offset: int
    size: int
    layer: str = ""


@dataclass(frozen=True)
class Overflow:
    """One memory a model does not fit: what needs how many bytes where how many are available."""

    memory: str        # "L3 emram", "L2", "L1"
    what: str          # what overflows it
    needed: int        # B
    available: int     # B

    @property
    def over_by(self) -> int:
        return self.needed - self.available

    def __str__(self) -> str:
        return (f"{self.what} ({self.needed:,} B) exceed {self.memory} ({self.available:,} B) "
                f"by {self.over_by:,} B")


@dataclass(frozen=True)
class MemoryPlan:
    """Where every parameter lives and how L2 is used."""

    l3: str
    policy: str
    l2_budget: int
    activation_bytes: int
    stream_buffer_bytes: int
    promoted: frozenset[int]            # constant tensor indices copied to L2 before the loop
    streamed_bytes: dict[str, int]      # layer name -> parameter bytes read from L3 per inference
    buffers: tuple[Buffer, ...]
    param_bytes: int
    param_elements: int
    rho_l3: float
    fits: bool
    reasons: tuple[str, ...] = ()
    overflows: tuple[Overflow, ...] = ()

    @property
    def l2_bytes_used(self) -> int:
        return max((b.offset + b.size for b in self.buffers), default=0)


@dataclass(frozen=True)
class TileGroup:
    """Tiles of one layer that share a residency (streamed from L3 or resident in L2)."""

    n_tiles: int
    l3_bytes: int      # per tile, L3 -> L2
    l2_bytes: int      # per tile, L2 -> L1 (parameters + activations)
    macs: int          # per tile


@dataclass(frozen=True)
class Tiling:
    """L1 tiling of one layer."""

    layer: str
    tile_bytes: int              # L1 bytes of one tile buffer (x2 for double buffering)
    groups: tuple[TileGroup, ...]
    fits_l1: bool
    l1_overflow: "Overflow | None" = None   # set when one weight row exceeds the L1 tile

    @property
    def n_tiles(self) -> int:
        return sum(g.n_tiles for g in self.groups)


@dataclass(frozen=True)
class LayerTiming:
    """Modeled execution of one layer."""

    name: str
    kind: str
    precision: str
    macs: int
    n_tiles: int
    cycles: int
    dma_l3_cycles: int
    dma_l2_cycles: int
    compute_cycles: int
    overhead_cycles: int
    bound: str          # dma_l3 | dma_l2 | compute
    l3_bytes: int
    estimate: bool = False

    @property
    def mac_per_cycle(self) -> float:
        return self.macs / self.cycles if self.cycles else 0.0


@dataclass(frozen=True)
class Schedule:
    layers: tuple[LayerTiming, ...]
    total_cycles: int
    macs: int
    freq_mhz: float

    @property
    def latency_ms(self) -> float:
        return self.total_cycles / (self.freq_mhz * 1e3)

    @property
    def mac_per_cycle(self) -> float:
        return self.macs / self.total_cycles if self.total_cycles else 0.0


@dataclass(frozen=True)
class PowerEstimate:
    power_mw: float              # whole SoC while running one inference
    core_mw: float               # static + dynamic
    l3_mw: float                 # L3 memory activity
    energy_uj: float             # per inference
    avg_power_mw_at_hop: float   # one inference per hop, sleeping in between
    sleep_mw: float
    hop_ms: float


@dataclass(frozen=True)
class FeatureCost:
    """Signal processing around the network per hop (targets/features.py): one new feature frame
    of a keyword-spotting file, or the denoiser's STFT front end and inverse-STFT back end."""

    kind: str              # logmel | mfcc (KWS) | stft (denoiser: analysis + synthesis)
    n_fft: int
    hop_ms: float          # the feature hop: one decision per hop
    cycles: int
    ms: float
    fft_cycles: int
    mac_cycles: int        # window, power, mel filterbank, DCT
    log_cycles: int
    overhead_cycles: int
    macs: int
    mel_weights: int       # nonzero mel filterbank weights (MACs of the filterbank)
    energy_uj: float = 0.0  # core power x feature time (set by the pipeline)
    sqrt_cycles: int = 0   # denoiser: square roots of the STFT magnitudes


@dataclass(frozen=True)
class Report:
    """Everything `tfdenoise report` prints, as data."""

    model: str
    board: Board
    op: OperatingPoint
    layers: tuple[Layer, ...]
    memory: MemoryPlan
    tilings: tuple[Tiling, ...]
    schedule: Schedule
    power: PowerEstimate
    warnings: tuple[str, ...]
    metadata: dict[str, Any] = field(default_factory=dict)
    #: signal processing per hop: a KWS file's feature frame, a denoiser file's STFT + inverse
    #: STFT (None: files of neither family, only the network is priced)
    features: FeatureCost | None = None
    #: loop strategies for sparse weights (`report --strategy`, Cortex-M boards; targets/strategies.py)
    strategies: "StrategyPricing | None" = None

    @property
    def decision_ms(self) -> float:
        """Time of one decision (hop): the inference plus the file's per-hop signal processing
        (a KWS feature frame, or the denoiser's STFT front end + inverse-STFT back end)."""
        return self.schedule.latency_ms + (self.features.ms if self.features else 0.0)

    @property
    def decision_energy_uj(self) -> float:
        """Energy of one decision: the inference plus the per-hop signal processing."""
        return self.power.energy_uj + (self.features.energy_uj if self.features else 0.0)

    @property
    def realtime_ok(self) -> bool:
        return self.fits and self.decision_ms <= self.power.hop_ms

    @property
    def fits(self) -> bool:
        return self.memory.fits and all(t.fits_l1 for t in self.tilings)

    @property
    def overflows(self) -> tuple[Overflow, ...]:
        """Every memory the model does not fit, with the bytes over (empty when it fits)."""
        return self.memory.overflows + tuple(t.l1_overflow for t in self.tilings if t.l1_overflow)


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
