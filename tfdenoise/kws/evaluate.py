"""Keyword-spotting evaluation (docs/design.md §7): accuracy, confusion matrix and DET.

* :func:`accuracy`: one window centred on each test clip, without noise (as validation sees
  the held-out clips during training): accuracy and the confusion matrix (rows: true class,
  columns: predicted class).
* :func:`build_stream`: a long signal (default one hour) made reproducibly from a seed:
  continuous real background noise (random segments of the noise recordings, 50 ms
  cross-fades, a random RMS level of -45 to -30 dBFS per segment) with a word every 1.5-5 s
  (gap after the previous word), each a test-split clip at a random SNR in 5-20 dB (its
  active speech level, :func:`tfdenoise.mixtures.speech_power`, against the RMS level of the
  background segment it falls in; the stream is clipped to [-1, 1] like a recording).
  Words are keywords or, for a keyword task, other labels (half each).  The clips repeat
  when the stream needs more words than the split has (one hour: ~1,000 words; the FSDD
  dataset split has 300 test clips); each repeat has its own SNR, level and background.
* :func:`det_curve`: the model runs over the whole stream, one decision per feature hop
  (the window ending at each frame; :meth:`KwsModel.offline_probs` equals streaming
  :meth:`KwsModel.stream` frame by frame).  For every keyword class and every threshold of
  the sweep, a trigger fires when the class posterior (averaged over ``smooth_frames``
  decisions; 1 = raw) reaches the threshold, after which that class cannot trigger again
  for ``suppression_s``.  A trigger whose input window overlaps an occurrence of its class
  detects it (hit); any other trigger is a false alarm (a wrong digit counts as one).
  FRR = share of keyword occurrences never detected; FA/h = false alarms per hour of stream.
  For the 10-digit task every digit is a keyword (pooled); for a keyword task the keywords.
* :func:`frr_at`: FRR at a false-alarm rate, interpolated linearly on the curve (which
  always includes the no-trigger point FA/h 0, FRR 1).
* :func:`evaluate_kws`: all of it for one model (checkpoint or ``.tflite``) and one split
  (``dataset``, ``speaker:NAME`` or ``all``), with a DET plot (FRR vs FA/h, log x).

The noise recordings of the stream are the ones the shipped model was trained with (other
random segments of them): the data folder has no held-out noise.
"""
from __future__ import annotations

import json
import math
import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence, TextIO

import numpy as np

from tfdenoise import mixtures
from tfdenoise.errors import InputError, ModelError
from tfdenoise.fileio import atomic_path
from tfdenoise.kws import data
from tfdenoise.kws.data import Clip, Task
from tfdenoise.kws.features import FeatureConfig, StreamingFeatures
from tfdenoise.kws.models import MODELS, KwsModel, load_kws_checkpoint, read_kws_config
from tfdenoise.kws.train import DATASET_SPLIT, centred_windows, split_clips, split_speaker, task_of
from tfdenoise.models import CONFIG_FILE
from tfdenoise.vocab import SAMPLE_RATE

DEFAULT_HOURS = 1.0
DEFAULT_STREAM_SNR_DB = (5.0, 20.0)
DEFAULT_SUPPRESSION_S = 1.0
FA_POINTS = (0.5, 1.0, 2.0)          # FA/h of the quoted operating points
GAP_SECONDS = (1.5, 5.0)             # noise between one word's end and the next word's start
BACKGROUND_DBFS = (-45.0, -30.0)     # RMS level of each background noise segment
BACKGROUND_SEGMENT_S = (20.0, 60.0)  # length of each background noise segment
CROSSFADE_S = 0.05
KEYWORD_SHARE = 0.5                  # keyword task: share of the stream's words that are keywords
STREAM_SEED = 20_231                 # + the request's seed
ALL_SPLITS = "all"


def thresholds() -> np.ndarray:
    """The threshold sweep: 0.01 .. 0.99 in steps of 0.01, and 1 - 10^-1 .. 1 - 10^-7 in
    20 steps per decade (a trained model's posteriors crowd next to 1)."""
    return np.unique(np.concatenate([np.round(np.linspace(0.01, 0.99, 99), 6),
                                     1.0 - np.logspace(-1, -7, 121)]))


# -- models ----------------------------------------------------------------------------------

class TfliteKws:
    """A KWS ``.tflite`` behind the :class:`KwsModel` inference interface (``features``,
    ``labels``, ``n_classes``, ``window_frames``, :meth:`predict_windows`,
    :meth:`offline_probs`).

    The network and its feature config are the named model whose input shape the file
    has (``[1, 49, 40]`` dnn, ``[1, 30, 40]`` cnn, ``[1, 49, 10]`` dscnn); the labels come
    from a ``config.json`` (a KWS checkpoint config) or ``<stem>.json`` with ``"labels"``
    next to the file, else the ten digits when the file has 10 outputs.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._interpreter = _interpreter(self.path)
        inp = self._interpreter.get_input_details()[0]
        out = self._interpreter.get_output_details()[0]
        shape = tuple(int(s) for s in inp["shape"][1:])
        matches = [spec for spec in MODELS.values() if spec.input_shape == shape]
        if len(inp["shape"]) != 3 or not matches:
            raise ModelError(f"input shape {list(inp['shape'])} is none of the KWS networks' "
                             f"({', '.join(f'{s.name}: [1, {s.input_shape[0]}, {s.input_shape[1]}]' for s in MODELS.values())})",
                             self.path)
        self.spec = matches[0]
        self.n_classes = int(out["shape"][-1])
        self.labels, self.keywords = _sidecar_labels(self.path, self.n_classes)
        self._batched = _try_batch(self._interpreter, inp)

    name = property(lambda self: self.spec.name)
    features = property(lambda self: self.spec.features)
    window_frames = property(lambda self: self.spec.features.window_frames)
    n_features = property(lambda self: self.spec.features.n_features)

    def predict_windows(self, windows: np.ndarray) -> np.ndarray:
        return run_tflite(self._interpreter, np.asarray(windows, np.float32), self._batched)

    def offline_probs(self, features: np.ndarray, batch: int = 256) -> np.ndarray:
        return KwsModel.offline_probs(self, features, batch)  # same windows, this predict

    _check_features = KwsModel._check_features


def _interpreter(path: Path):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # pragma: no cover - the full TensorFlow interpreter as a fallback
        from tfdenoise.keras import tf
        Interpreter = tf.lite.Interpreter
    try:
        interp = Interpreter(model_path=str(path))
        interp.allocate_tensors()
    except Exception as exc:  # the interpreter raises ValueError/RuntimeError for bad files
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
        raise ModelError(f"not a loadable .tflite ({first})", path) from None
    return interp


def _try_batch(interp, inp: dict) -> bool:
    """Resize the input to a dynamic batch if the file allows it (True), else one window per
    invoke (False)."""
    if inp["shape"][0] != 1 or "shape_signature" not in inp or inp["shape_signature"][0] != -1:
        return False
    try:
        interp.resize_tensor_input(inp["index"], [2, *inp["shape"][1:]])
        interp.allocate_tensors()
        interp.resize_tensor_input(inp["index"], list(inp["shape"]))
        interp.allocate_tensors()
        return True
    except Exception:
        interp.resize_tensor_input(inp["index"], list(inp["shape"]))
        interp.allocate_tensors()
        return False


def run_tflite(interp, windows: np.ndarray, batched: bool = False) -> np.ndarray:
    """Probabilities ``[n, classes]`` (float32) of ``windows`` ``[n, T, F]`` through a
    LiteRT interpreter with one input and one output; int8/uint8 tensors are (de)quantized
    with their scale and zero point.  ``batched``: resize the input to ``n`` (dynamic batch)
    instead of one invoke per window."""
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]

    def quantize(x: np.ndarray) -> np.ndarray:
        if np.issubdtype(inp["dtype"], np.integer):
            scale, zero = inp["quantization"]
            info = np.iinfo(inp["dtype"])
            return np.clip(np.round(x / scale + zero), info.min, info.max).astype(inp["dtype"])
        return x.astype(inp["dtype"])

    def dequantize(y: np.ndarray) -> np.ndarray:
        if np.issubdtype(out["dtype"], np.integer):
            scale, zero = out["quantization"]
            return ((y.astype(np.float32) - zero) * scale).astype(np.float32)
        return y.astype(np.float32)

    if len(windows) == 0:
        return np.zeros((0, int(out["shape"][-1])), np.float32)
    if batched:
        interp.resize_tensor_input(inp["index"], [len(windows), *inp["shape"][1:]])
        interp.allocate_tensors()
        interp.set_tensor(inp["index"], quantize(windows))
        interp.invoke()
        return dequantize(interp.get_tensor(out["index"])).reshape(len(windows), -1)
    rows = []
    for w in windows:
        interp.set_tensor(inp["index"], quantize(w[None]))
        interp.invoke()
        rows.append(dequantize(interp.get_tensor(out["index"])).reshape(-1))
    return np.stack(rows)


def _sidecar_labels(path: Path, n: int) -> tuple[list[str], tuple[str, ...] | None]:
    for side in (path.with_suffix(".json"), path.parent / CONFIG_FILE):
        if side.is_file():
            try:
                cfg = json.loads(side.read_text())
            except (ValueError, OSError):
                continue
            labels = cfg.get("labels") if isinstance(cfg, dict) else None
            if isinstance(labels, list) and len(labels) == n and all(isinstance(x, str) for x in labels):
                kw = cfg.get("keywords")
                return list(labels), tuple(kw) if kw else None
    if n == 10:
        return [str(d) for d in range(10)], None
    raise ModelError(f"{n} outputs and no labels: put a config.json or {path.stem}.json with "
                     f"\"labels\" next to it", path)


def load_model(path: str | os.PathLike):
    """``(model, task, info)`` of a KWS checkpoint folder or ``.tflite``: the model (a
    :class:`KwsModel` or :class:`TfliteKws`), its :class:`Task` and what the checkpoint says
    about its training (``split``; empty for a ``.tflite`` without a sidecar)."""
    path = Path(path)
    if path.is_file():
        model = TfliteKws(path)
        return model, Task(tuple(model.labels), model.keywords), {"format": "tflite"}
    config = read_kws_config(path)
    model = load_kws_checkpoint(path)
    task = task_of(config)
    return model, task, {"format": "checkpoint", "split": config.get("split", DATASET_SPLIT),
                         "epoch": config.get("epoch"), "training": config.get("training")}


def resolve_model(spec: str | None) -> Path:
    """The model a ``--model`` names: a KWS checkpoint folder, a run folder (its ``best/``)
    or a ``.tflite``; None: the shipped default KWS model.  One-line errors."""
    if spec is None:
        from tfdenoise.pretrained import kws_checkpoint

        return kws_checkpoint()
    path = Path(spec)
    if path.is_file():
        if path.suffix.lower() != ".tflite":
            raise InputError("--model must be a KWS checkpoint folder or a .tflite file", path)
        return path
    if path.is_dir():
        if (path / "best" / CONFIG_FILE).is_file():  # a run folder (its config.json is the run's)
            return path / "best"
        return path
    raise InputError("--model: no such checkpoint folder or .tflite file", path)


# -- accuracy ----------------------------------------------------------------------------------

def accuracy(model, clips: Sequence[Clip], task: Task,
             signals: Sequence[np.ndarray] | None = None) -> dict:
    """Accuracy and confusion matrix of ``model`` on ``clips``: one window centred on each
    clip (no shift, gain or noise).  ``signals``: the clips' audio if already loaded."""
    if not clips:
        raise InputError("no clips to score")
    signals = data.load_clips(clips) if signals is None else signals
    x = centred_windows(signals, model.features)
    probs = np.concatenate([model.predict_windows(x[i:i + 512]) for i in range(0, len(x), 512)])
    pred = probs.argmax(-1)
    true = task.targets(clips)
    n = task.n_classes
    confusion = np.zeros((n, n), np.int64)
    np.add.at(confusion, (true, pred), 1)
    return {"accuracy": float(np.mean(pred == true)), "n": len(clips), "errors": int(np.sum(pred != true)),
            "labels": list(task.labels), "confusion": confusion.tolist()}


# -- the DET stream -------------------------------------------------------------------------

@dataclass
class Stream:
    """A long test signal and the words in it: ``events[i] = (start_s, end_s, label)``."""

    audio: np.ndarray
    events: list[tuple[float, float, str]]
    info: dict = field(default_factory=dict)

    @property
    def hours(self) -> float:
        return len(self.audio) / SAMPLE_RATE / 3600


def _background(noise: mixtures.Corpus | None, rng: np.random.Generator,
                n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` samples of continuous background: random noise segments at random levels joined
    by cross-fades (generated pink-ish noise when there are no recordings); with each
    segment's start sample and mean square (its level: a word's SNR refers to it)."""
    out = np.zeros(n, np.float32)
    seg_starts, seg_power = [], []
    fade = int(CROSSFADE_S * SAMPLE_RATE)
    ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
    pos = 0
    while pos < n:
        length = int(rng.uniform(*BACKGROUND_SEGMENT_S) * SAMPLE_RATE) + fade
        if noise is not None:
            seg = mixtures._segment(noise, rng, length).astype(np.float64)
        else:
            seg = np.cumsum(rng.standard_normal(length)) * 0.02
            seg = seg - np.convolve(seg, np.ones(64) / 64, mode="same")  # drift removed: pink-ish
        rms = float(np.sqrt(np.mean(seg ** 2)))
        level = 10 ** (rng.uniform(*BACKGROUND_DBFS) / 20)
        if rms > 1e-9:
            seg *= level / rms
        seg_starts.append(pos)
        seg_power.append(level ** 2)
        seg = seg.astype(np.float32)
        if pos > 0:
            seg[:fade] *= ramp
            out[pos:pos + fade] *= 1.0 - ramp[:max(0, min(fade, n - pos))]
        end = min(n, pos + length)
        out[pos:end] += seg[:end - pos]
        pos = end - fade if end < n else end
    return out, np.asarray(seg_starts), np.asarray(seg_power)


def build_stream(keywords: Sequence[tuple[np.ndarray, str]], others: Sequence[tuple[np.ndarray, str]],
                 noise: mixtures.Corpus | None, hours: float = DEFAULT_HOURS, seed: int = 0,
                 snr_db: tuple[float, float] = DEFAULT_STREAM_SNR_DB,
                 keyword_share: float = KEYWORD_SHARE) -> Stream:
    """A reproducible stream of ``hours`` of background noise with words in it (see the
    module docstring).  ``keywords`` and ``others`` are ``(audio, label)`` pairs; a word is a
    keyword with probability ``keyword_share`` (always, when there are no ``others``); the
    clips are used in shuffled rounds, so every clip appears before any repeats."""
    if not keywords:
        raise InputError("the DET stream needs keyword clips; the split has none")
    if not hours > 0:
        raise InputError(f"--hours must be > 0, got {hours}")
    rng = np.random.default_rng([STREAM_SEED, seed])
    n = int(round(hours * 3600 * SAMPLE_RATE))
    audio, seg_starts, seg_power = _background(noise, rng, n)
    pools = {"kw": list(keywords), "other": list(others)}
    orders: dict[str, list[int]] = {"kw": [], "other": []}
    events: list[tuple[float, float, str]] = []
    pos = int(rng.uniform(*GAP_SECONDS) * SAMPLE_RATE)
    while True:
        kind = "kw" if not others or rng.random() < keyword_share else "other"
        if not orders[kind]:
            orders[kind] = list(rng.permutation(len(pools[kind])))
        x, label = pools[kind][orders[kind].pop()]
        if pos + len(x) > n:
            break
        # The level of the background segment, not the power right under the word: ambient
        # recordings have near-silent stretches, where a local SNR would make a word inaudible.
        p_noise = float(seg_power[np.searchsorted(seg_starts, pos, side="right") - 1])
        p_word = mixtures.speech_power(np.asarray(x, np.float64))
        if p_word > 0:
            gain = math.sqrt(p_noise * 10 ** (rng.uniform(*snr_db) / 10) / p_word)
            audio[pos:pos + len(x)] += (gain * np.asarray(x, np.float64)).astype(np.float32)
            events.append((pos / SAMPLE_RATE, (pos + len(x)) / SAMPLE_RATE, label))
        pos += len(x) + int(rng.uniform(*GAP_SECONDS) * SAMPLE_RATE)
    np.clip(audio, -1.0, 1.0, out=audio)
    return Stream(audio, events, {"hours": round(n / SAMPLE_RATE / 3600, 6), "seed": seed,
                                  "snr_db": list(snr_db), "words": len(events),
                                  "keyword_clips": len(keywords), "other_clips": len(others),
                                  "noise": "recordings" if noise is not None else "generated"})


def stream_features(audio: np.ndarray, cfg: FeatureConfig, chunk_seconds: float = 30.0) -> np.ndarray:
    """:func:`~tfdenoise.kws.features.features` of a long signal, computed in chunks
    (:class:`StreamingFeatures`: the same frames, bounded memory)."""
    sf = StreamingFeatures(cfg)
    step = int(chunk_seconds * SAMPLE_RATE)
    parts = [sf.push(audio[i:i + step]) for i in range(0, len(audio), step)]
    return np.concatenate(parts) if parts else np.zeros((0, cfg.n_features), np.float32)


def stream_probs(model, audio: np.ndarray, batch: int = 2048) -> np.ndarray:
    """Posteriors ``[decisions, classes]`` of ``model`` over ``audio``: decision ``i`` is the
    window of frames ``i .. i + window_frames - 1``."""
    return model.offline_probs(stream_features(audio, model.features), batch=batch)


# -- DET -----------------------------------------------------------------------------------

def _triggers(score: np.ndarray, threshold: float, suppress: int) -> np.ndarray:
    """Decision indices where ``score`` reaches ``threshold``, each followed by ``suppress``
    decisions that cannot trigger."""
    above = np.flatnonzero(score >= threshold)
    out = []
    i = 0
    while i < len(above):
        t = int(above[i])
        out.append(t)
        i = int(np.searchsorted(above, t + suppress, side="left"))
    return np.asarray(out, np.int64)


def det_curve(probs: np.ndarray, events: Sequence[tuple[float, float, str]], labels: Sequence[str],
              keywords: Sequence[str], cfg: FeatureConfig, hours: float,
              sweep: Sequence[float] | None = None, suppression_s: float = DEFAULT_SUPPRESSION_S,
              smooth_frames: int = 1) -> dict:
    """FRR and false alarms per hour over a threshold sweep, from a stream's posteriors.

    ``probs[i]`` is the decision on the window ending with frame ``i + window_frames - 1``,
    i.e. covering ``[i * hop, i * hop + window_samples)`` samples.  ``events`` are the words
    ``(start_s, end_s, label)``; those whose label is in ``keywords`` are the occurrences
    to detect.  Returns ``{"thresholds", "frr", "fa_per_hour", "false_alarms", "hits",
    "occurrences", "curve"}`` with ``curve`` = ``[[fa_per_hour, frr], ...]`` by rising FA/h.
    """
    sweep = thresholds() if sweep is None else np.asarray(sweep, np.float64)
    if suppression_s < 0 or smooth_frames < 1:
        raise InputError(f"suppression must be >= 0 s and smoothing >= 1 frame, got "
                         f"{suppression_s}, {smooth_frames}")
    n = len(probs)
    hop_s, win_s = cfg.hop / cfg.sample_rate, cfg.window_samples / cfg.sample_rate
    suppress = max(1, int(math.ceil(suppression_s / hop_s)))
    starts = np.arange(n) * hop_s  # window i covers [starts[i], starts[i] + win_s)
    occ = [(s, e, lab) for s, e, lab in events if lab in keywords]
    covered = {}
    for k in keywords:
        cov = np.full(n, -1, np.int64)  # occurrence of class k inside window i (the latest)
        for j, (s, e, lab) in enumerate(occ):
            if lab == k:
                lo = max(0, int(math.floor((s - win_s) / hop_s)) + 1)
                hi = min(n, int(math.ceil(e / hop_s)))
                cov[lo:hi] = j
        covered[k] = cov
    scores = {}
    for k in keywords:
        s = probs[:, list(labels).index(k)].astype(np.float64)
        if smooth_frames > 1:
            s = np.convolve(s, np.ones(smooth_frames) / smooth_frames)[:n]
        scores[k] = s
    frr, fa, fas, hits_all = [], [], [], []
    for th in sweep:
        hit: set[int] = set()
        false = 0
        for k in keywords:
            t = _triggers(scores[k], th, suppress)
            c = covered[k][t]
            hit.update(int(j) for j in c[c >= 0])
            false += int(np.sum(c < 0))
        frr.append(1.0 - len(hit) / len(occ) if occ else 0.0)
        fas.append(false)
        fa.append(false / hours)
        hits_all.append(len(hit))
    curve = sorted({(f, r) for f, r in zip(fa, frr)} | {(0.0, 1.0)})
    return {"thresholds": [float(t) for t in sweep], "frr": frr, "fa_per_hour": fa,
            "false_alarms": fas, "hits": hits_all, "occurrences": len(occ),
            "suppression_s": suppression_s, "smooth_frames": smooth_frames,
            "curve": [[round(f, 6), round(r, 6)] for f, r in curve]}


def frr_at(curve: Sequence[Sequence[float]], fa_per_hour: float) -> float:
    """FRR at ``fa_per_hour`` on a DET ``curve`` (``[[fa_per_hour, frr], ...]``): the lower
    envelope (the best FRR reachable at or below each FA rate), interpolated linearly."""
    pts = sorted((float(f), float(r)) for f, r in curve)
    if not pts:
        raise InputError("empty DET curve")
    fa = np.array([p[0] for p in pts])
    frr = np.minimum.accumulate(np.array([p[1] for p in pts]))
    # several points at one FA rate: keep the best (the envelope) before interpolating
    keep = np.r_[fa[1:] != fa[:-1], True]
    return float(np.interp(fa_per_hour, fa[keep], frr[keep]))


def envelope(curve: Sequence[Sequence[float]]) -> list[tuple[float, float]]:
    """The lower envelope of a DET curve: by rising FA/h, the best FRR reachable so far."""
    pts = sorted((float(f), float(r)) for f, r in curve)
    out: list[tuple[float, float]] = []
    for f, r in pts:
        r = min(r, out[-1][1]) if out else r
        if out and out[-1][0] == f:
            out[-1] = (f, r)
        else:
            out.append((f, r))
    return out


def plot_det(curves: dict[str, Sequence[Sequence[float]]], path: str | os.PathLike, title: str = "") -> Path:
    """FRR (%) against false alarms per hour (log x) of one or more curves (their lower
    envelopes, :func:`envelope`; the FRR at 0.5, 1 and 2 FA/h marked), as a PNG written
    atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
    for name, curve in curves.items():
        pts = [(f, r) for f, r in envelope(curve) if f > 0]
        if pts:
            line, = ax.step([p[0] for p in pts], [100 * p[1] for p in pts], where="post", label=name)
            ax.plot(FA_POINTS, [100 * frr_at(curve, f) for f in FA_POINTS], "o",
                    color=line.get_color(), ms=4)
    for f in FA_POINTS:
        ax.axvline(f, color="0.8", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_xlabel("false alarms per hour")
    ax.set_ylabel("false rejection rate (%)")
    ax.set_title(title or "detection error trade-off")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


# -- the whole evaluation ------------------------------------------------------------------

@dataclass(frozen=True)
class EvalRequest:
    """What ``tfdenoise kws evaluate`` scores besides the model."""

    data: str
    noise: str | None = None
    split: str = DATASET_SPLIT      # "dataset", "speaker:<name>" or "all"
    hours: float = DEFAULT_HOURS     # 0: no DET
    snr_db: tuple[float, float] = DEFAULT_STREAM_SNR_DB
    suppression_s: float = DEFAULT_SUPPRESSION_S
    seed: int = 0
    cache_dir: str | None = None     # decoded noise cache (None: decode every time)

    def check(self) -> None:
        if self.split != ALL_SPLITS:
            split_speaker(self.split)
        h = self.hours
        if isinstance(h, bool) or not isinstance(h, numbers.Real) or not math.isfinite(h) or not 0 <= h <= 100:
            raise InputError(f"--hours must be a number in [0, 100] (0: no DET), got {h}")
        lo, hi = self.snr_db
        if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
            raise InputError(f"--snr must be two finite numbers LO HI with LO <= HI, got {lo} {hi}")
        if not (math.isfinite(self.suppression_s) and self.suppression_s >= 0):
            raise InputError(f"--suppression must be a number of seconds >= 0, got {self.suppression_s}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise InputError(f"--seed must be an integer >= 0, got {self.seed}")
        if self.noise is not None and not Path(self.noise).is_dir():
            raise InputError("--noise: no such folder", self.noise)


def list_data(folder: str | os.PathLike) -> list[Clip]:
    """The clips of ``--data`` (one-line errors for a missing, empty or unknown-layout folder)."""
    return data.list_clips(folder)


def _det_for(model, task: Task, test: Sequence[Clip], signals: Sequence[np.ndarray],
             noise: mixtures.Corpus | None, request: EvalRequest, progress: TextIO | None) -> dict:
    keywords = task.keywords if task.keywords is not None else task.labels
    kw = [(x, c.label) for c, x in zip(test, signals) if c.label in keywords]
    other = [(x, c.label) for c, x in zip(test, signals) if c.label not in keywords]
    stream = build_stream(kw, other, noise, request.hours, request.seed, request.snr_db)
    if progress:
        print(f"  DET stream: {stream.hours:.2f} h, {len(stream.events)} words "
              f"({sum(1 for e in stream.events if e[2] in keywords)} keyword occurrences)",
              file=progress, flush=True)
    probs = stream_probs(model, stream.audio)
    det = det_curve(probs, stream.events, list(model.labels), keywords, model.features,
                    stream.hours, suppression_s=request.suppression_s)
    points = {f"{f:g}": frr_at(det["curve"], f) for f in FA_POINTS}
    return {"frr_at_fa_per_hour": points, "curve": det["curve"], "keywords": list(keywords),
            "occurrences": det["occurrences"], "suppression_s": request.suppression_s,
            "stream": stream.info,
            "sweep": {k: det[k] for k in ("thresholds", "frr", "fa_per_hour", "false_alarms")}}


def _seen(split: str, trained_split: str | None) -> bool | None:
    """Whether the model saw ``split``'s test clips in training (None: unknown, a .tflite)."""
    if trained_split is None:
        return None
    if split == DATASET_SPLIT:
        return trained_split != DATASET_SPLIT  # a left-one-out run trained on indices 0-4 too
    return split != trained_split


def evaluate_kws(model_path: str | os.PathLike, request: EvalRequest, clips: Sequence[Clip] | None = None,
                 plot: str | os.PathLike | None = None, progress: TextIO | None = None) -> dict:
    """Accuracy, confusion matrix and DET of one model (checkpoint folder or ``.tflite``).

    ``request.split``: ``dataset`` (indices 0-4), ``speaker:NAME`` (the whole speaker), or
    ``all`` (the dataset split with its DET, plus the accuracy of every speaker's clips, each
    marked ``in_training`` unless the model was trained without that speaker).  The top-level
    ``accuracy`` and ``det`` are the first split's.  Nothing is written but ``plot``, at the end.
    """
    request.check()
    model, task, info = load_model(model_path)
    clips = list_data(request.data) if clips is None else list(clips)
    present = set(data.labels(clips))
    missing = [k for k in (task.keywords or task.labels) if k not in present]
    if missing:
        raise InputError(f"the model's classes {', '.join(missing)} are not labels of the data "
                         f"(labels: {', '.join(sorted(present))})", request.data)
    speakers = data.speakers(clips)
    if request.split == ALL_SPLITS:
        splits = [DATASET_SPLIT] + [f"speaker:{s}" for s in speakers]
    else:
        splits = [request.split]
    tests = {}
    for split in splits:
        _, _, test = split_clips(clips, split)
        tests[split] = test
    if progress:
        print(f"{Path(model_path)}: {model.name} ({info['format']}), classes {', '.join(task.labels)}",
              file=progress, flush=True)
    noise = None
    if request.hours > 0 and request.noise:
        noise = mixtures.load_corpus(request.noise, request.cache_dir, progress=progress is not None)
    results: dict = {}
    curves = {}
    for i, split in enumerate(splits):
        test = tests[split]
        signals = data.load_clips(test)
        row = accuracy(model, test, task, signals)
        row["in_training"] = _seen(split, info.get("split"))
        if progress:
            print(f"  {split}: accuracy {row['accuracy']:.2%} ({row['errors']} errors of {row['n']})"
                  + ("  [speaker seen in training]" if row["in_training"] else ""), file=progress, flush=True)
        if i == 0 and request.hours > 0:
            row["det"] = _det_for(model, task, test, signals, noise, request, progress)
            curves[split] = row["det"]["curve"]
        results[split] = row
    first = results[splits[0]]
    out = {"model": str(model_path), "network": model.name.value, "format": info["format"],
           "labels": list(task.labels), "keywords": list(task.keywords) if task.keywords else None,
           "trained_split": info.get("split"), "split": splits[0],
           "accuracy": first["accuracy"], "confusion": first["confusion"],
           "det": first.get("det"), "splits": results}
    if plot and curves:
        plot_det(curves, plot, title=f"{model.name.value} ({Path(model_path).name}): DET, "
                                     f"{request.hours:g} h stream")
    return out


def format_result(result: dict) -> str:
    """A few human-readable lines of :func:`evaluate_kws`'s result."""
    lines = [f"{result['network']} {result['model']}: classes {', '.join(result['labels'])}"]
    for split, row in result["splits"].items():
        note = "  (speaker seen in training)" if row.get("in_training") else ""
        lines.append(f"  {split:24} accuracy {row['accuracy']:7.2%}  ({row['errors']}/{row['n']} wrong){note}")
    det = result.get("det")
    if det:
        pts = "  ".join(f"FRR@{k} FA/h {v:.2%}" for k, v in det["frr_at_fa_per_hour"].items())
        lines.append(f"  DET ({det['stream']['hours']:g} h, {det['occurrences']} keyword occurrences, "
                     f"suppression {det['suppression_s']:g} s): {pts}")
    return "\n".join(lines)
