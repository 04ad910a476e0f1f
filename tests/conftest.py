"""Shared fixtures: tiny synthetic wav pairs, bundled real pairs, a random-weight checkpoint."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

SR = 16000


def synth_speech(seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    """A speech-like test signal: amplitude-modulated harmonics of a gliding pitch."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, np.pi))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.5 * (1 + np.sin(2 * np.pi * 3 * t)) ** 2
    return (0.1 * x * envelope).astype(np.float32)


def write_wav(path: Path, x: np.ndarray, sr: int = SR, subtype: str = "PCM_16") -> Path:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x, sr, subtype=subtype)
    return path


def make_pairs(folder: Path, n: int = 2, seconds: float = 1.0) -> Path:
    """A Valentini-layout folder with ``n`` synthetic pairs ``u0.wav``, ``u1.wav``, ..."""
    rng = np.random.default_rng(1)
    for i in range(n):
        clean = synth_speech(seconds, seed=i)
        noisy = clean + 0.02 * rng.standard_normal(clean.size).astype(np.float32)
        write_wav(folder / "clean" / f"u{i}.wav", clean)
        write_wav(folder / "noisy" / f"u{i}.wav", noisy)
    return folder


@pytest.fixture
def pairs(tmp_path: Path) -> Path:
    """Two tiny synthetic pairs (1 s each) in ``tmp_path/pairs``."""
    return make_pairs(tmp_path / "pairs")


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    """One 1-second synthetic mono wav."""
    return write_wav(tmp_path / "in.wav", synth_speech(1.0))


@pytest.fixture
def real_pairs(tmp_path: Path) -> Path:
    """The two shortest bundled Valentini test pairs, copied to ``tmp_path/real``."""
    from tfdenoise.samples import pairs_dir

    src = pairs_dir()
    for name in ("p257_259.wav", "p257_114.wav"):
        for side in ("noisy", "clean"):
            (tmp_path / "real" / side).mkdir(parents=True, exist_ok=True)
            shutil.copy(src / side / name, tmp_path / "real" / side / name)
    return tmp_path / "real"


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    """A random-weight GRU128 checkpoint (the smallest variant), built once per session."""
    from tfdenoise.models import TinyDenoiser, save_checkpoint

    return save_checkpoint(TinyDenoiser("gru128", seed=0),
                           tmp_path_factory.mktemp("ckpt") / "gru128")


@pytest.fixture(scope="session")
def tiny_model(checkpoint: Path):
    """The session checkpoint, loaded."""
    from tfdenoise.models import load_checkpoint

    return load_checkpoint(checkpoint)


@pytest.fixture
def cli(capsys):
    """Call ``tfdenoise.cli.main(argv)``; returns ``(exit code, stdout, stderr)``."""
    from tfdenoise.cli import main

    def run(*argv) -> tuple[int, str, str]:
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture(scope="session")
def corpus_dirs(tmp_path_factory) -> tuple[Path, Path]:
    """A few seconds of synthetic 'speech' (two speakers) and noise at 16 kHz."""
    import soundfile as sf

    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    t = np.arange(16000 * 2) / 16000
    for spk in ("p001", "p002"):
        (root / "speech" / "set").mkdir(parents=True, exist_ok=True)
        for i in range(2):
            f0 = 120 + 40 * i + (30 if spk == "p002" else 0)
            x = 0.3 * np.sin(2 * np.pi * f0 * t) * (np.sin(2 * np.pi * 2 * t) > 0)
            sf.write(root / "speech" / "set" / f"{spk}_{i:03d}.wav", x, 16000)
    (root / "noise").mkdir()
    for i in range(2):
        sf.write(root / "noise" / f"hiss_{i}.wav", 0.1 * rng.standard_normal(32000), 48000)
    return root / "speech", root / "noise"


@pytest.fixture(scope="session")
def qat_checkpoint(tmp_path_factory):
    """Factory: ``(variant, rnn_bits) -> (checkpoint folder, {(layer, weight): Keras grid})``,
    a stage-1 QAT checkpoint (random weights, BN folded) with 8-bit FC and ``rnn_bits`` RNN
    weights, as ``tfdenoise train --qat-bits 8 --qat-layer-bits 'rnn_.*=B'`` saves it."""
    from tfdenoise import qat_layers, qat_quantizers
    from tfdenoise.models import TinyDenoiser, save_checkpoint

    def make(variant: str, rnn_bits: int = 4):
        den = TinyDenoiser(variant, seed=3)
        qat_quantizers.fold_network(den.sequence)
        bits = qat_layers.plan_bits(den.sequence, 8, [("rnn_.*", rnn_bits)])
        qnet = qat_layers.qat_network(den.sequence, bits, 1)
        folder = tmp_path_factory.mktemp(f"qat_{variant}_{rnn_bits}") / "ckpt"
        save_checkpoint(den, folder, {"qat": qat_layers.qat_record(den.sequence, qnet, bits, 1)})
        return folder, qat_layers.quantized_weights(qnet)
    return make
