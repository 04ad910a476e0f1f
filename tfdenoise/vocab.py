"""The shared vocabulary: audio constants and every kind of thing, defined once.

Part of the base layer (with :mod:`tfdenoise.errors` and :mod:`tfdenoise.fileio`): it
imports nothing of ours, and every other module (speech side, ``converters``, ``targets``,
the CLI) takes its constants and kinds from here.  Kinds are ``StrEnum`` members, so they
compare equal to their strings and print and serialise (JSON, CLI tables) exactly as the
plain strings did.
"""
from __future__ import annotations

from enum import StrEnum

# -- audio front end (docs/design.md §1) ---------------------------------------------------
SAMPLE_RATE = 16000     # Hz, mono
FRAME = 400             # samples per analysis frame (25 ms)
HOP = 100               # samples between frames (6.25 ms): one inference per hop
N_FFT = 512             # FFT size
N_BINS = N_FFT // 2 + 1  # 257 magnitudes in, 257 gains out
HOP_MS = 1000.0 * HOP / SAMPLE_RATE  # 6.25 ms: the real-time budget of one inference


class VariantName(StrEnum):
    """The four TinyDenoiser variants (docs/design.md §2)."""

    LSTM256 = "lstm256"
    GRU256 = "gru256"
    LSTM128 = "lstm128"
    GRU128 = "gru128"


class ModelFamily(StrEnum):
    """What kind of network a model holds (a checkpoint's ``config.json`` says ``"family"``
    for keyword spotting; a denoiser's has none)."""

    DENOISER = "denoiser"  # TinyDenoiser (docs/design.md §2)
    KWS = "kws"            # a keyword-spotting network (docs/design.md §7)


class KwsModelName(StrEnum):
    """The three reference keyword-spotting networks (docs/design.md §7)."""

    DNN = "dnn"      # Amazon: feedforward, streaming, state-free, about 250 K parameters
    CNN = "cnn"      # STM32F7: one Conv2D (186 filters) + FC 32-128-128
    DSCNN = "dscnn"  # MLPerf Tiny KWS reference: DS-CNN small, 64 channels


class CellKind(StrEnum):
    """Recurrent cell of a TinyDenoiser."""

    LSTM = "lstm"
    GRU = "gru"


#: Cell and units k of each variant (docs/design.md §2).
VARIANT_SHAPES: dict[VariantName, tuple[CellKind, int]] = {
    VariantName.LSTM256: (CellKind.LSTM, 256), VariantName.GRU256: (CellKind.GRU, 256),
    VariantName.LSTM128: (CellKind.LSTM, 128), VariantName.GRU128: (CellKind.GRU, 128)}


class Precision(StrEnum):
    """Storage / compute precision of one layer (docs/design.md §4)."""

    FP32 = "fp32"
    FP16 = "fp16"
    INT8 = "int8"
    #: INT8 weights with float activations (dynamic-range quantization): the weights are
    #: converted to float on the fly and the MACs are float MACs.
    HYBRID = "hybrid"


class FilePrecision(StrEnum):
    """Precision of a whole exported file: one of the layer precisions, or mixed."""

    FP32 = "fp32"
    FP16 = "fp16"
    INT8 = "int8"
    MIXED = "mixed"


#: The built-in recipes, in the order commands list them.
FILE_PRECISIONS: tuple[str, ...] = tuple(p.value for p in FilePrecision)


class CalibMethod(StrEnum):
    """Activation-range statistic of INT8 calibration (docs/design.md §4)."""

    MAX = "max"
    STD3 = "std3"


class RangeKind(StrEnum):
    """How an INT8 activation range is laid out from its statistic ``r`` (docs/design.md §4).

    ``symmetric``: ``[-r, r]`` for every tensor (the reference design's, zero point 0);
    ``asymmetric``: a tensor that is never negative on the calibration clips (the input
    magnitudes, a ReLU's output) gets ``[0, 2 r]``: the same step as ``[-r, r]`` with the grid's
    unused negative half moved above ``r`` (zero point -128); the others stay ``[-r, r]``.
    """

    SYMMETRIC = "symmetric"
    ASYMMETRIC = "asymmetric"


class LayerKind(StrEnum):
    """What kind of kernel the MCU runs for a group of TFLite operators."""

    LSTM = "lstm"
    GRU = "gru"
    DENSE = "dense"
    CONVERSION = "conversion"
    ELEMENTWISE = "elementwise"
    CONV = "conv"
    DEPTHWISE_CONV = "depthwise_conv"
    POOL = "pool"
    SOFTMAX = "softmax"
    LAYOUT = "layout"
    GENERIC = "generic"


class QuantGroup(StrEnum):
    """Which weights share one quantization step (docs/design.md §8; tfdenoise/qat.py)."""

    TENSOR = "tensor"        # the whole tensor (one TFLite scale per tensor)
    CHANNEL = "channel"      # one per output channel, the last axis (dense, conv, GRU: per-channel scales)
    DEPTHWISE = "depthwise"  # one per input channel of a depthwise kernel [kh, kw, cin, 1]
    GATES = "gates"          # one per gate of an LSTM kernel (the fused op's per-gate tensors)


class BufferKind(StrEnum):
    """What a region of L2 holds in a memory plan."""

    ACTIVATION = "activation"
    PROMOTED = "promoted"
    STREAM = "stream"
    RESERVED = "reserved"


#: Deployment layers of a TinyDenoiser in graph order; BN and ReLU fold into the FC before
#: them (the contract between the Keras model, the recipes and the ``.tflite`` metadata).
DEPLOY_LAYERS: tuple[str, ...] = ("fc_in", "rnn_0", "rnn_1", "fc_mid", "fc_out")
#: Keras layers that exist only before folding, mapped to the layer they fold into.
FOLDED: dict[str, str] = {"bn_in": "fc_in", "relu_in": "fc_in",
                          "bn_mid": "fc_mid", "relu_mid": "fc_mid"}


class CodePrecision(StrEnum):
    """Number format of a Cortex-M kernel's inner loop (docs/design.md §9-§10): what the MAC
    instruction works on, whatever the file stores."""

    FP32 = "fp32"  # single-precision FPU: one VMLA/VFMA per MAC, no SIMD
    Q15 = "q15"    # 16-bit fixed point: SMLAD does two 16 x 16 MACs per instruction
    INT8 = "int8"  # CMSIS-NN s8: weights widened to 16 bits with SXTAB16, then SMLAD


class LoopStrategy(StrEnum):
    """How a kernel loops over a (sparse) weight tensor: the variants the STM32F7 paper compares
    (Wang & Li 2022, arXiv 2208.02765; docs/design.md §9), priced by targets/strategies.py."""

    DENSE = "dense"                # the dense kernel loop, SIMD where the precision has it: zeros cost the same
    SCALAR = "scalar"              # the same loop without SIMD: one MAC instruction per weight
    SKIP_ZERO = "skip-zero"        # scalar loop, a test and branch per weight, the MAC only for nonzeros
    SKIP_ROW = "skip-row"          # a test per weight row (vector), the dense loop on the non-empty rows
    WEIGHT_FIRST = "weight-first"  # weight loop outermost: one test per weight skips every MAC that uses it


class PruneMethod(StrEnum):
    """How ``tfdenoise prune`` removes weights (docs/design.md §9; tfdenoise/prune.py)."""

    UNSTRUCTURED = "unstructured"  # the smallest-magnitude weights of each tensor, anywhere
    M_BY_N = "2:4"                 # 2 zeros in every 4 consecutive weights along the input axis
    BLOCK = "block"                # whole R x C blocks of each rank-2 kernel (--block RxC)
    STRUCTURED = "structured"      # whole units / filters: the layers really shrink


class PruneSchedule(StrEnum):
    """How the sparsity of unstructured / block pruning grows during fine-tuning."""

    CONSTANT = "constant"      # the target from the first step (tfmot ConstantSparsity)
    POLYNOMIAL = "polynomial"  # 0 -> target over the first half of the steps (tfmot PolynomialDecay)
