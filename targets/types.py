"""Frozen dataclasses that flow between the pipeline steps (see `targets.pipeline`).

read (graph.Graph) -> layers (Layer) -> memory (MemoryPlan) -> tiling (Tiling)
-> schedule (LayerTiming, Schedule) -> power (PowerEstimate) -> Report.
The board description (`Board`, loaded by `targets.boards`) is an input of every step.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tfdenoise.targets.hardware import Board, Constant, L3Memory, OperatingPoint  # noqa: F401 (re-exported)
from tfdenoise.targets.sparse_types import (LayerSparsity, StrategyCycles, StrategyPricing,  # noqa: F401
                                            WeightSparsity)
from tfdenoise.vocab import BufferKind, LayerKind, Precision

#: bytes per activation element for each kernel precision on the MCU (hybrid layers keep
#: FP32 activations: only their weights are INT8, docs/design.md §4)
ACT_BYTES: dict[Precision, int] = {Precision.INT8: 1, Precision.FP16: 2, Precision.FP32: 4,
                                   Precision.HYBRID: 4}


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
    #: tensors only partly in L2 (split layers): tensor index -> bytes of it promoted (the rows
    #: of whole L1 tiles, targets/promotion.py); whole tensors are in `promoted`
    partial: dict[int, int] = field(default_factory=dict)
    #: split layers: layer name -> number of its L1 tiles whose rows are all resident in L2
    resident_tiles: dict[str, int] = field(default_factory=dict)
    #: the first L3 tile of each layer is loaded during the layer before (policy suffix
    #: "+prefetch", targets/schedule.py)
    prefetch: bool = False

    @property
    def l2_bytes_used(self) -> int:
        return max((b.offset + b.size for b in self.buffers), default=0)

    @property
    def promoted_bytes(self) -> int:
        """Parameter bytes copied to L2 before the loop (whole tensors and split rows)."""
        return self.param_bytes - sum(self.streamed_bytes.values())


@dataclass(frozen=True)
class PromotionContext:
    """What a promotion policy (targets/promotion.py) may look at: the board, the operating
    point and L3 memory the model runs at (L3 time depends on both), the layers in execution
    order, and the L2 bytes left for promoted parameters."""

    board: Board
    op: OperatingPoint
    l3: str
    layers: tuple[Layer, ...]
    room: int


@dataclass(frozen=True)
class Promotion:
    """A policy's choice: whole constant tensors copied to L2, and split layers (layer name ->
    number of whole L1 tiles whose rows go to L2, the rest of the layer streamed)."""

    tensors: frozenset[int]
    resident_tiles: dict[str, int] = field(default_factory=dict)


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
    prefetch_cycles: int = 0   # L3 cycles of the first tile hidden under the previous layer (subtracted)

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
