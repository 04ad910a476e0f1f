"""Ship a trained checkpoint as a pretrained model, with its measured model card.

    python tools/ship_model.py RUN_DIR [--pairs DIR] [--jobs N]
    python tools/ship_model.py --card-only VARIANT|RUN_DIR

Copies ``RUN_DIR/best`` (config.json + weights.h5) into ``tfdenoise/pretrained/<variant>/``,
keeps the ``.tflite`` exports of the table in ``tflite/`` (see ``TFLITE_FILES``),
then measures and writes ``MODEL_CARD.md`` and ``card.json`` beside it:
training data, epochs/steps, wall time, hardware (from the run's own records), scores of
``tfdenoise evaluate`` and the ``tfdenoise validate --table`` rows (``validation.TABLE_ROWS``).
Every number in the card is measured here; nothing is typed in.

Paths in the card, ``card.json`` and the shipped ``config.json`` are written relative to the
project root when they lie inside the project or beside it (``../shared/data/speech``), so
no card names a folder of the machine it was made on.  ``--card-only`` rewrites
``MODEL_CARD.md`` (and the paths of ``card.json``) of a shipped model from its ``card.json``;
it needs no run folder.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tfdenoise.losses import LossWeights  # noqa: E402 (no TensorFlow import)

REFERENCE_MAG_LOSS = LossWeights.mag  # the log-magnitude weight of the reference recipe, and of rows that predate it


def _project_path(path: str | os.PathLike) -> str:
    """``path`` as a card records it: relative to the project root when it lies inside the
    project or beside it (``<parent>/shared/data/speech`` -> ``../shared/data/speech`` for a
    project in ``<parent>/main``); other absolute paths unchanged; relative paths as given
    (the recipes and ``tfdenoise train`` run from the project root)."""
    p = Path(path)
    if not p.is_absolute():
        return str(path)
    for base in (ROOT, ROOT.parent):
        if base != Path(base.anchor) and p.is_relative_to(base):
            return os.path.relpath(p, ROOT)
    return str(path)


def _card_paths(obj, variant: str):
    """``obj`` (card.json content) with its paths (``model``, ``pairs``, ``checkpoint``) made
    project-relative; the temporary folder the model was measured in (``.<variant>.tmp``) is
    recorded as the folder it was renamed to."""
    if isinstance(obj, list):
        return [_card_paths(v, variant) for v in obj]
    if not isinstance(obj, dict):
        return obj
    out = {}
    for key, value in obj.items():
        if key in ("model", "pairs", "checkpoint") and isinstance(value, str) and value != "noisy":
            p = Path(value)
            value = _project_path(p.with_name(variant) if p.name == f".{variant}.tmp" else p)
        out[key] = _card_paths(value, variant)
    return out


class _EpochData(NamedTuple):
    """What one epoch trained on, as one history row records it."""

    segments: int
    segment_s: float
    snr_db: tuple[float, float]
    snr_level: str
    noise_exclude: tuple[str, ...]
    synthetic_noise: float  # share of babble / speech-shaped noise
    min_clean_snr: float  # clean-speech SNR floor in dB (0: all speech)
    compressed_loss: float  # weight of the compressed spectral loss (0: off)
    augment: str = ""  # augmentation of the training mixtures ('' : none)
    ema: float = 0.0  # decay of the weight average that was scored and saved (0: raw weights)
    mag_loss: float = REFERENCE_MAG_LOSS  # weight of the log-magnitude STFT loss


#: history-row keys of the augmentation (tfdenoise/augment.py: Augment.record), present only when on
_AUGMENT_KEYS = ("reverb", "rt60", "reverb_target", "level_db", "tilt_db")


def _augment_text(h: dict) -> str:
    """'30 % reverberant (RT60 0.2-1 s, dry target), gain -20..0 dB, tilt -6..6 dB per 8 kHz'."""
    parts = []
    if h.get("reverb"):
        lo, hi = h["rt60"]
        parts.append(f"{h['reverb']:.0%} reverberant (simulated rooms, RT60 {lo:g}-{hi:g} s, "
                     f"{h['reverb_target']} target)")
    if h.get("level_db"):
        parts.append("gain {:g}..{:g} dB".format(*h["level_db"]))
    if h.get("tilt_db"):
        parts.append("tilt {:g}..{:g} dB per 8 kHz".format(*h["tilt_db"]))
    return ", ".join(parts)


def _epoch_data(h: dict, tr: dict) -> _EpochData:
    """One history row's :class:`_EpochData`; older rows lack fields and fall back to the run's
    final training config (rows from before the SNR level, exclusions, synthetic share and
    speech filter were recorded used the segment's mean power, all recorded noise, none
    synthetic, and all speech; rows from before the loss weight was recorded used the
    compressed loss if and only if they logged a non-zero ``comp``; a row records
    augmentation and the weight average only when they were on)."""
    compressed = h.get("compressed_loss", tr.get("compressed_loss", 0.0) if h.get("comp", 0.0) > 0 else 0.0)
    return _EpochData(int(h.get("segments", tr["segments_per_epoch"])), float(h.get("segment_s", tr["segment_seconds"])),
                      tuple(h.get("snr_db", tr["snr_db"])), h.get("snr_level", "mean"),
                      tuple(h.get("noise_exclude", ())), float(h.get("synthetic_noise", 0.0)),
                      float(h.get("min_clean_snr", 0.0)), float(compressed), _augment_text(h),
                      float(h.get("ema", 0.0)), float(h.get("mag_loss", REFERENCE_MAG_LOSS)))


_COMPRESSED = (", plus a power-law compressed spectral loss (Braun & Tashev 2021; "
               "`tfdenoise train --compressed-loss W`) in the phases that say so")


def _mixing(level: str, excluded, synthetic: float, min_clean_snr: float = 0.0) -> str:
    """'active speech level, noise without `voice/*`, 20 % babble / speech-shaped noise':
    what an SNR refers to, what noise (and which speech, when some was filtered out)."""
    text = "active speech level" if level == "active" else "segment mean power"
    text += (", noise without " + ", ".join(f"`{p}`" for p in excluded)) if excluded else ""
    text += f", {synthetic:.0%} babble / speech-shaped noise" if synthetic else ""
    return text + (f", speech clips of {min_clean_snr:g} dB estimated SNR or more" if min_clean_snr > 0 else "")


def _phases(history: list, tr: dict) -> str:
    """'20 of 1024 x 1 s segments at 0-15 dB SNR, learning rate 0.001, then 60 of ...'."""
    runs: list[list[dict]] = []
    for h in history:
        if runs and _epoch_data(runs[-1][-1], tr) == _epoch_data(h, tr):
            runs[-1].append(h)
        else:
            runs.append([h])
    parts = []
    for rows in runs:
        seg, sec, (lo, hi), level, excluded, synthetic, min_clean, compressed, augment, ema, mag = _epoch_data(rows[0], tr)
        lrs = [r.get("lr", tr["learning_rate"]) for r in rows]
        lr = f"{lrs[0]:.2g}" if lrs[0] == lrs[-1] else f"{lrs[0]:.2g} -> {lrs[-1]:.2g}"
        loss = f", loss + {compressed:g} x compressed spectral loss" if compressed else ""
        loss += f", log-magnitude loss weight {mag:g} (reference {REFERENCE_MAG_LOSS:g})" if mag != REFERENCE_MAG_LOSS else ""
        extra = (f", augmented: {augment}" if augment else "") + (f", moving average of the weights (EMA {ema:g}) "
                                                                 "scored and saved" if ema else "")
        parts.append(f"{len(rows)} of {seg} x {sec:g} s segments at {lo:g}-{hi:g} dB SNR ({_mixing(level, excluded, synthetic, min_clean)}), learning rate {lr}{loss}{extra}")
    return ", then ".join(parts)


def _selection(cfg: dict) -> str:
    """How the shipped checkpoint was picked, with its score (and which weights: --ema)."""
    tr = cfg["training"]
    weights = f" of its moving-average weights (EMA {tr['ema']:g})" if tr.get("ema") else ""
    augmented = bool(tr.get("reverb")) or any(list(tr.get(k) or (0, 0)) != [0, 0] for k in ("level_db", "tilt_db"))
    if cfg.get("score_name", "").startswith("-val_mix_pesq"):
        n = tr["valid_pesq"]
        ref = _mixing(tr.get("snr_level", "mean"), tr.get("noise_exclude"), tr.get("synthetic_noise", 0.0),
                      tr.get("min_clean_snr", 0.0))
        return (f"picked by PESQ-WB {-cfg['best_score']:.3f}{weights} on {n} held-out speech + noise mixtures "
                f"(4 s, 2.5-17.5 dB SNR by {ref}{', never augmented' if augmented else ''}; scored every epoch "
                "since the switch to this criterion)")
    return f"picked by validation loss {cfg['best_score']:.4f}{weights}"


def _card(variant: str, cfg: dict, history: list, evaluation: dict, table: dict) -> str:
    tr = cfg["training"]
    epochs = [_epoch_data(h, tr) for h in history]
    hours = sum(e.segments * e.segment_s for e in epochs) / 3600
    steps = sum(-(-e.segments // int(tr["batch"])) for e in epochs)
    speech, noise = _project_path(tr["speech"]), _project_path(tr["noise"])
    relative = not (Path(speech).is_absolute() and Path(noise).is_absolute())
    lines = [
        f"# {variant.upper()} (tfdenoise pretrained model)", "",
        "## Training", "",
        f"- Data{' (folders relative to the project root)' if relative else ''}: clean speech "
        f"`{speech}` + noise `{noise}` mixed on the fly "
        "(segment lengths and SNR ranges per phase below); "
        f"{tr['valid_fraction']:.0%} of the speakers held out for validation. The Valentini test "
        "pairs were never used for training or checkpoint selection.",
        f"- Loss: L1 + multi-resolution STFT (docs/design.md §3){_COMPRESSED if any(e.compressed_loss for e in epochs) else ''}; "
        f"Adam, batch {tr['batch']}.",
        f"- Epochs: {len(history)} ({_phases(history, tr)}; {steps} steps, "
        f"{hours:.1f} h of mixtures); best checkpoint: epoch "
        f"{cfg['metrics']['epoch']}, {_selection(cfg)}.",
        f"- Wall time: {sum(h['seconds'] for h in history) / 60:.1f} min of training on "
        f"{cfg.get('hardware', 'a 2-core CPU machine (no GPU), shared with other jobs')}.", "",
        "## Scores on the 10 bundled Valentini test pairs (`tfdenoise evaluate`)", "",
        "| | PESQ-WB | STOI |", "|---|---|---|",
        f"| noisy input | {evaluation['noisy_mean']['pesq']:.3f} | {evaluation['noisy_mean']['stoi']:.3f} |",
        f"| {variant.upper()} FP32 (Keras, streaming) | {evaluation['mean']['pesq']:.3f} | "
        f"{evaluation['mean']['stoi']:.3f} |", "",
        "## Quantized forms (`tfdenoise validate --table`, LiteRT, frame by frame)", "",
        "| precision | PESQ-WB | STOI | parameters (MB) |", "|---|---|---|---|",
    ]
    for r in table["rows"]:
        mb = "" if r.get("param_mb") is None else f"{r['param_mb']:.3f}"
        lines.append(f"| {r['label']} | {r['pesq']:.3f} | {r['stoi']:.3f} | {mb} |")
    lines += ["", f"Calibration clips: {', '.join(table['calibration_clips'])}.", ""]
    return "\n".join(lines)


def _full_history(run_rows: list, shipped_card: Path) -> list:
    """The run's history rows after the earlier phases' rows: a run forked from a checkpoint
    (``fork_best``) starts at a later epoch, and the shipped card already holds the epochs
    before it."""
    first = min((r["epoch"] for r in run_rows), default=1)
    if first <= 1 or not shipped_card.is_file():
        return run_rows
    earlier = [r for r in json.loads(shipped_card.read_text())["history"] if r["epoch"] < first]
    return earlier + run_rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="training run folder (its best/ ships); with --card-only "
                                           "also a shipped variant name, e.g. lstm128")
    ap.add_argument("--pairs", type=Path, default=None, help="default: the bundled samples")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--card-only", action="store_true",
                    help="only rewrite MODEL_CARD.md (and the paths in card.json) of the shipped "
                         "model from its card.json; measures nothing")
    ap.add_argument("--hardware", default=f"{platform.machine()} CPU, {os.cpu_count()} cores, no GPU, "
                                          "shared with other training runs")
    args = ap.parse_args()
    from tfdenoise.fileio import write_text
    from tfdenoise.models import read_config
    from tfdenoise.pretrained import PRETRAINED_DIR

    if args.card_only:
        run_best = args.run / "best"
        variant = read_config(run_best)["variant"] if run_best.is_dir() else args.run.name.lower()
        dest = PRETRAINED_DIR / variant
        if not (dest / "card.json").is_file():
            ap.error(f"{args.run}: neither a run folder with best/ nor a shipped variant "
                     f"(no {dest / 'card.json'})")
        text = (dest / "card.json").read_text()
        card = _card_paths(json.loads(text), variant)
        if json.dumps(card, indent=2) != text:
            write_text(dest / "card.json", json.dumps(card, indent=2))
        write_text(dest / "MODEL_CARD.md", _card(card["variant"], read_config(dest), card["history"],
                                                 card["evaluate"], card["table"]))
        return 0
    from tfdenoise import samples
    from tfdenoise.evaluate import evaluate_pairs
    from tfdenoise.validation import quant_table

    best = args.run / "best"
    cfg = read_config(best)
    variant = cfg["variant"]
    dest = PRETRAINED_DIR / variant
    tmp = PRETRAINED_DIR / f".{variant}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    (tmp / "tflite").mkdir()
    cfg["hardware"] = args.hardware
    for key in ("speech", "noise"):  # the shipped config names no folder of this machine
        cfg["training"][key] = _project_path(cfg["training"][key])
    (tmp / "config.json").write_text(json.dumps(cfg, indent=2))
    shutil.copy2(best / "weights.h5", tmp / "weights.h5")
    pairs = args.pairs or samples.pairs_dir()
    evaluation = evaluate_pairs(pairs, str(tmp), jobs=args.jobs)
    table = quant_table(str(tmp), pairs, jobs=args.jobs, workdir=tmp / "tflite")
    history = _full_history(json.loads((args.run / "history.json").read_text()), dest / "card.json")
    evaluation, table = _card_paths(evaluation, variant), _card_paths(table, variant)
    (tmp / "card.json").write_text(json.dumps({"variant": variant, "evaluate": evaluation,
                                               "table": table, "history": history}, indent=2))
    (tmp / "MODEL_CARD.md").write_text(_card(variant, cfg, history, evaluation, table))
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    print((dest / "MODEL_CARD.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
