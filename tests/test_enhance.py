"""Enhancement: signals, files, folders, model resolution."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import synth_speech, write_wav
from tfdenoise import pretrained
from tfdenoise.enhance import enhance_files, enhance_signal, load_streaming_model
from tfdenoise.modelref import ModelFormat, resolve
from tfdenoise.errors import ModelError
from tfdenoise.fileio import write_bytes
from tfdenoise.stft import process_offline


@pytest.mark.parametrize("n", [50, 401, 4037])
def test_enhance_signal_keeps_length(tiny_model, n):
    x = synth_speech(1.0)[:n]
    y = enhance_signal(x, tiny_model)
    assert y.shape == (n,) and y.dtype == np.float32 and np.all(np.isfinite(y))


def test_streaming_enhancement_equals_offline(tiny_model):
    x = synth_speech(0.5)
    streamed = enhance_signal(x, tiny_model, streaming=True)
    np.testing.assert_allclose(streamed, process_offline(x, tiny_model.offline_mask), atol=1e-5)
    np.testing.assert_allclose(streamed, enhance_signal(x, tiny_model), atol=1e-5)


def _real_noisy(name: str = "p257_259.wav") -> np.ndarray:
    """A bundled Valentini noisy file (the shortest, 1.44 s)."""
    from tfdenoise.data import list_pairs, load_pair
    from tfdenoise.samples import pairs_dir

    return next(load_pair(p)[0] for p in list_pairs(pairs_dir()) if p.name == name)


@pytest.mark.parametrize("variant", ["lstm128", "gru128"])
def test_sequence_path_equals_step_model_on_real_file(variant):
    """The compiled sequence model in blocks gives the step model's gains, frame by frame."""
    from tfdenoise.stft import padded_length, stft

    model = load_streaming_model(variant)  # the shipped trained weights
    x = _real_noisy()
    mags = np.abs(stft(np.pad(x, (0, padded_length(len(x)) - len(x))))).astype(np.float32)
    step = model.streaming_mask()
    stepped = np.stack([step(m) for m in mags])
    blocks = model.sequence_mask()  # the state carries over from block to block
    whole = np.concatenate([blocks(mags[:97]), blocks(mags[97:])])
    assert whole.shape == stepped.shape == (len(mags), 257)
    np.testing.assert_allclose(whole, stepped, atol=1e-5)
    fast, ref = enhance_signal(x, model), enhance_signal(x, model, streaming=True)
    assert fast.shape == ref.shape == x.shape
    np.testing.assert_allclose(fast, ref, atol=1e-5)


@pytest.mark.parametrize("variant", ["lstm128", "gru128"])
def test_tflite_loop_bit_identical_to_signature_runner(variant):
    """The preallocated LiteRT loop gives, bit for bit, what the signature runner gave, on
    the shipped mixed exports (LSTM: state inside the interpreter; GRU: INT8 states fed back)."""
    from tfdenoise.stft import process_blocks, process_streaming

    den = load_streaming_model(pretrained.tflite(variant, "mixed"))
    x = _real_noisy()
    before = process_streaming(x, den.runner_stepper())
    np.testing.assert_array_equal(enhance_signal(x, den), before)
    np.testing.assert_array_equal(enhance_signal(x, den, streaming=True), before)
    np.testing.assert_array_equal(process_blocks(x, den.sequence_mask(), block_frames=50), before)


def test_enhance_streaming_flag(tmp_path, wav, checkpoint, cli):
    """``--streaming`` runs the hop-by-hop reference: the same audio to PCM16 rounding."""
    outs = []
    for extra in ([], ["--streaming"]):
        dst = tmp_path / f"o{len(extra)}.wav"
        code, _, err = cli("enhance", wav, "-o", dst, "--model", checkpoint, "--jobs", "1", *extra)
        assert code == 0, err
        outs.append(sf.read(str(dst))[0])
    np.testing.assert_allclose(outs[0], outs[1], atol=2 / 32768)


def test_enhance_file_to_file_and_folder(tmp_path, wav, checkpoint, cli):
    code, out, _ = cli("enhance", wav, "-o", tmp_path / "o" / "x.wav", "--model", checkpoint,
                       "--jobs", "1")
    assert code == 0 and out.strip() == str(tmp_path / "o" / "x.wav")
    assert sf.info(str(tmp_path / "o" / "x.wav")).frames == sf.info(str(wav)).frames
    written = enhance_files(wav, tmp_path / "dir", str(checkpoint), jobs=1)
    assert written == [tmp_path / "dir" / "in.wav"]


def test_enhance_folder_mirrors_layout(tmp_path, checkpoint):
    src = tmp_path / "src"
    write_wav(src / "a.wav", synth_speech(0.7, seed=1))
    write_wav(src / "sub" / "b.flac", synth_speech(0.4, seed=2))
    write_wav(src / "c.wav", synth_speech(0.9, seed=3), sr=48000)  # 0.3 s at 48 kHz
    written = enhance_files(src, tmp_path / "out", str(checkpoint), jobs=1)
    names = sorted(p.relative_to(tmp_path / "out").as_posix() for p in written)
    assert names == ["a.wav", "c.wav", "sub/b.wav"]
    frames = {p.name: sf.info(str(p)).frames for p in written}
    assert frames == {"a.wav": 11200, "b.wav": 6400, "c.wav": 4800}  # 16 kHz, same durations
    assert not [p for p in (tmp_path / "out").rglob(".*")]


@pytest.mark.slow
def test_enhance_folder_in_process_pool(tmp_path, checkpoint):
    src = tmp_path / "src"
    for i in range(3):
        write_wav(src / f"f{i}.wav", synth_speech(0.5, seed=i))
    pooled = enhance_files(src, tmp_path / "pool", str(checkpoint), jobs=2)
    serial = enhance_files(src, tmp_path / "serial", str(checkpoint), jobs=1)
    for a, b in zip(pooled, serial):
        # the same model in other processes: TensorFlow's CPU kernels may sum in another order
        # (threads), which can move a sample across a 16-bit rounding step (seen once: 1 of 8000)
        x, y = sf.read(str(a))[0], sf.read(str(b))[0]
        assert x.shape == y.shape and np.abs(x - y).max() <= 2.0 ** -15 + 1e-12


def test_model_resolution(tmp_path, checkpoint, monkeypatch):
    ref = resolve(str(checkpoint))
    assert ref.path == checkpoint and ref.format is ModelFormat.CHECKPOINT and ref.variant == "gru128"
    assert not ref.pretrained
    with pytest.raises(ModelError, match="no such .tflite"):
        resolve(tmp_path / "m.tflite")
    (tmp_path / "weird.bin").write_bytes(b"x")
    with pytest.raises(ModelError, match="not a checkpoint"):
        load_streaming_model(tmp_path / "weird.bin")
    with pytest.raises(ModelError, match="no config.json"):
        resolve(tmp_path)
    with pytest.raises(ModelError, match="nor a variant name"):
        resolve(tmp_path / "lstm64")
    # a variant name is the shipped trained model, unless a folder of that name exists
    shipped = resolve("GRU128")
    assert shipped.pretrained and shipped.variant == "gru128" and shipped.path == pretrained.checkpoint("gru128")
    monkeypatch.chdir(tmp_path)
    shutil.copytree(checkpoint, tmp_path / "gru128")
    assert resolve("gru128").path == Path("gru128") and not resolve("gru128").pretrained
    # default model: missing weights -> ModelError; shipped weights -> their folder
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", tmp_path / "pre")
    with pytest.raises(ModelError, match="not shipped"):
        resolve(None)
    shutil.copytree(checkpoint, tmp_path / "pre" / pretrained.DEFAULT_VARIANT)
    assert resolve(None).path == tmp_path / "pre" / pretrained.DEFAULT_VARIANT
    with pytest.raises(ModelError, match="unknown variant"):
        pretrained.checkpoint("rnn64")


@pytest.mark.slow
def test_enhance_with_tflite_model(tmp_path, tiny_model, checkpoint):
    """A float .tflite export enhances like its Keras checkpoint (needs converters/)."""
    export = pytest.importorskip("tfdenoise.converters.convert")
    path = write_bytes(tmp_path / "m.tflite", export.convert(tiny_model, "fp32"))
    model = load_streaming_model(str(path))
    x = synth_speech(0.5)
    y = enhance_signal(x, model)
    assert y.shape == x.shape
    np.testing.assert_allclose(y, enhance_signal(x, tiny_model), atol=1e-4)
    written = enhance_files(write_wav(tmp_path / "in.wav", x), tmp_path / "o.wav", str(path),
                            jobs=1)
    assert sf.info(str(written[0])).frames == x.size
