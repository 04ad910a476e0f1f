"""KWS training and evaluation: runs, resume, one-line errors, DET math, streams, the CLI."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import write_wav

from tfdenoise.errors import InputError
from tfdenoise.kws import data
from tfdenoise.kws.det import det_curve, frr_at, thresholds
from tfdenoise.kws.evaluate import EvalRequest
from tfdenoise.kws.features import DNN_FEATURES
from tfdenoise.kws.stream import build_stream
from tfdenoise.kws.train import train_kws
from tfdenoise.kws.train_config import KwsTrainConfig
from tfdenoise.kws_evaluate import evaluate_kws, load_model

ROOT = Path(__file__).resolve().parents[2]
FSDD = ROOT.parent / "shared" / "data" / "kws" / "fsdd"
SR = 16000


@pytest.fixture(scope="module")
def subset(tmp_path_factory) -> Path:
    """3 digits x 2 speakers x 12 takes of the real FSDD (72 clips: 30 test, 42 train+valid)."""
    if not FSDD.is_dir():
        pytest.skip(f"real FSDD clips not found at {FSDD}")
    folder = tmp_path_factory.mktemp("fsdd3x2")
    for digit in "012":
        for speaker in ("george", "jackson"):
            for i in range(12):
                shutil.copy(FSDD / f"{digit}_{speaker}_{i}.flac", folder)
    return folder


@pytest.fixture(scope="module")
def noise_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("noise")
    rng = np.random.default_rng(3)
    for i in range(2):
        write_wav(folder / f"n{i}.wav", (0.05 * rng.standard_normal(2 * SR)).astype(np.float32))
    return folder


def config(subset: Path, out: Path, **kw) -> KwsTrainConfig:
    base = dict(model="dnn", data=str(subset), out=str(out), epochs=1, batch=16,
                windows_per_epoch=32, valid_fraction=0.2, cache_dir="")
    return KwsTrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def run(subset, noise_dir, tmp_path_factory) -> Path:
    """A 1-epoch digits run, then resumed to 2 epochs."""
    out = tmp_path_factory.mktemp("runs") / "dnn"
    train_kws(config(subset, out, noise=str(noise_dir)), verbose=0)
    first = json.loads((out / "history.json").read_text())
    assert [r["epoch"] for r in first] == [1]
    train_kws(config(subset, out, noise=str(noise_dir), epochs=2), resume=True, verbose=0)
    return out


# -- training ------------------------------------------------------------------------------

def test_run_folder_is_complete_and_resumed(run):
    history = json.loads((run / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2]       # the resumed run continued the count
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "lr"} <= set(history[0])
    last = json.loads((run / "last" / "config.json").read_text())
    assert last["epoch"] == 2 and last["labels"] == ["0", "1", "2"] and last["task"] == "digits"
    assert (run / "last" / "optimizer").is_dir() and (run / "last" / "weights.h5").is_file()
    assert (run / "best" / "weights.h5").is_file() and not (run / "best" / "optimizer").exists()
    leftovers = [p.name for p in run.iterdir() if p.name.startswith(".")]
    assert leftovers == []                                # no staged or temporary folders
    model, task, info = load_model(run / "best")
    assert task.labels == ("0", "1", "2") and info["split"] == "dataset"


def test_resume_with_another_model_is_one_line(run, subset, noise_dir):
    with pytest.raises(InputError, match=r"trained as dnn; --model cnn cannot resume it") as exc:
        train_kws(config(subset, run, model="cnn", epochs=3), resume=True, verbose=0)
    assert "\n" not in str(exc.value)
    with pytest.raises(InputError, match="already holds a training run"):
        train_kws(config(subset, run), verbose=0)


def test_keyword_task_trains_with_silence(subset, noise_dir, tmp_path):
    out = tmp_path / "kw"
    best = train_kws(config(subset, out, noise=str(noise_dir), keywords=("1",)), verbose=0)
    cfg = json.loads((best / "config.json").read_text())
    assert cfg["labels"] == ["1", data.UNKNOWN, data.SILENCE] and cfg["keywords"] == ["1"]
    assert cfg["task"] == "keywords"


@pytest.mark.parametrize("kw, option", [
    ({"epochs": 0}, "--epochs"), ({"batch": 0}, "--batch"), ({"learning_rate": 2.0}, "--lr"),
    ({"final_learning_rate": 0.0}, "--lr-final"), ({"snr_db": (20.0, 0.0)}, "--snr"),
    ({"noise_prob": 1.5}, "--noise-prob"), ({"shift_seconds": -1.0}, "--shift"),
    ({"split": "people:bob"}, "--split"), ({"valid_fraction": 0.0}, "--valid-fraction"),
    ({"keywords": ("1", "1")}, "--keywords"), ({"keywords": ("_silence_",)}, "--keywords"),
    ({"model": "rnn"}, "--model"), ({"seed": -1}, "--seed"), ({"windows_per_epoch": -2}, "--windows-per-epoch"),
])
def test_ranges_are_checked_naming_the_option(kw, option, tmp_path):
    with pytest.raises(InputError) as exc:
        KwsTrainConfig(**{**dict(model="dnn", data="x", out=str(tmp_path / "o")), **kw}).check()
    assert option in str(exc.value) and "\n" not in str(exc.value)


# -- bad inputs through the CLI ------------------------------------------------------------

def _layout_cases(tmp: Path, subset: Path) -> dict[str, tuple[list[str], str]]:
    empty = tmp / "empty"
    empty.mkdir()
    odd = tmp / "odd"
    odd.mkdir()
    shutil.copy(next(subset.iterdir()), odd / "recording.flac")
    return {
        "empty": (["--data", empty], "no audio clips"),
        "layout": (["--data", odd], "unknown layout"),
        "keyword": (["--data", subset, "--keywords", "7"], "keyword '7' is not a label of the data"),
        "speaker": (["--data", subset, "--split", "speaker:nobody"], "speaker 'nobody' is not in the data"),
    }


@pytest.mark.parametrize("case", ["empty", "layout", "keyword", "speaker"])
def test_train_bad_inputs_one_line_nothing_written(cli, tmp_path, subset, case):
    args, message = _layout_cases(tmp_path, subset)[case]
    out = tmp_path / "out"
    code, stdout, err = cli("kws", "train", "--model", "dnn", "--out", out, "--epochs", "1", *args)
    assert code == 2, err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_corrupt_checkpoint_is_one_line(cli, tmp_path, run, subset):
    bad = tmp_path / "bad"
    shutil.copytree(run / "best", bad)
    (bad / "weights.h5").write_bytes(b"not hdf5 at all")
    report = tmp_path / "r.json"
    code, _, err = cli("kws", "evaluate", "--model", bad, "--data", subset, "--hours", "0", "--json", report)
    assert code == 3 and "corrupt or mismatched weights" in err and len(err.strip().splitlines()) == 1, err
    assert not report.exists()
    (bad / "config.json").write_text("{ not json")
    code, _, err = cli("kws", "evaluate", "--model", bad, "--data", subset, "--json", report)
    assert code == 3 and "corrupt config.json" in err and len(err.strip().splitlines()) == 1, err
    assert not report.exists()
    # resuming a run whose last/ is corrupt: one line, the run untouched
    broken = tmp_path / "run"
    shutil.copytree(run, broken)
    (broken / "last" / "config.json").write_text("{")
    before = (broken / "history.json").read_text()
    code, _, err = cli("kws", "train", "--model", "dnn", "--data", subset, "--out", broken,
                       "--epochs", "3", "--resume")
    assert code == 3 and len(err.strip().splitlines()) == 1, err
    assert (broken / "history.json").read_text() == before


def test_evaluate_bad_data_nothing_written(cli, tmp_path, run, subset):
    report, plot = tmp_path / "r.json", tmp_path / "det.png"
    for args, message in _layout_cases(tmp_path, subset).values():
        if "--keywords" in args:  # evaluate has no --keywords: a model class missing from the data
            continue
        code, _, err = cli("kws", "evaluate", "--model", run, "--hours", "0", "--json", report,
                           "--plot", plot, *args)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    other = tmp_path / "other"
    other.mkdir()
    for f in subset.glob("0_*"):
        shutil.copy(f, other)
    code, _, err = cli("kws", "evaluate", "--model", run, "--data", other, "--json", report)
    assert code == 2 and "classes 1, 2 are not labels of the data" in err, err
    assert not report.exists() and not plot.exists()


def test_evaluate_json_and_plot(cli, tmp_path, run, subset, noise_dir):
    report, plot = tmp_path / "r.json", tmp_path / "det.png"
    code, stdout, err = cli("kws", "evaluate", "--model", run, "--data", subset, "--noise", noise_dir,
                            "--hours", "0.02", "--split", "all", "--json", "-", "--plot", plot)
    assert code == 0, err
    result = json.loads(stdout)  # --json -: only JSON on stdout
    assert 0.0 <= result["accuracy"] <= 1.0 and len(result["confusion"]) == 3
    det = result["det"]
    assert set(det["frr_at_fa_per_hour"]) == {"0.5", "1", "2"}
    assert all(len(p) == 2 for p in det["curve"]) and det["stream"]["hours"] == pytest.approx(0.02)
    assert set(result["splits"]) == {"dataset", "speaker:george", "speaker:jackson"}
    assert result["splits"]["speaker:george"]["in_training"] is True
    assert result["splits"]["dataset"]["in_training"] is False
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_kws_models_json(cli):
    code, stdout, err = cli("kws", "models", "--classes", "6", "--json", "-")
    assert code == 0, err
    rows = {r["model"]: r for r in json.loads(stdout)}
    assert rows["cnn"]["params"] == 119_936 and rows["cnn"]["macs"] == 476_576
    assert set(rows) == {"dnn", "cnn", "dscnn"}
    code, stdout, _ = cli("kws", "models")
    assert code == 0 and "dnn" in stdout and "(10 classes)" in stdout
    code, _, err = cli("kws", "models", "--classes", "1")
    assert code == 2 and "--classes" in err


# -- DET math --------------------------------------------------------------------------------

CFG = DNN_FEATURES  # hop 20 ms, window 0.985 s


def _spike(probs: np.ndarray, col: int, start: int, length: int = 3, value: float = 0.9) -> None:
    probs[start:start + length, col] = value


def test_det_counts_hits_false_alarms_and_suppression():
    n, hours = 5000, 0.5                       # 100 s of decisions; FA/h = false alarms / 0.5
    probs = np.zeros((n, 2))
    labels, keywords = ["a", "b"], ("a",)
    hop = CFG.hop / SR
    events = [(10.0, 10.4, "a"), (30.0, 30.4, "a"), (50.0, 50.4, "a"), (70.0, 70.4, "b")]
    # occurrence 1: detected (a spike while its window covers it); occurrence 2: weak (0.6)
    _spike(probs, 0, int(10.2 / hop))
    _spike(probs, 0, int(30.2 / hop), value=0.6)
    # occurrence 3 never fires; "b" is no keyword: an "a" spike on it is a false alarm
    _spike(probs, 0, int(70.2 / hop))
    # a long false "a" plateau of 2.5 s in keyword-free audio: 1 s suppression -> 3 triggers
    probs[int(85 / hop):int(87.5 / hop), 0] = 0.95
    det = det_curve(probs, events, labels, keywords, CFG, hours, sweep=[0.5, 0.7, 0.99],
                    suppression_s=1.0)
    assert det["occurrences"] == 3
    assert det["hits"] == [2, 1, 0]
    assert det["false_alarms"] == [4, 4, 0]
    assert det["frr"] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert det["fa_per_hour"] == pytest.approx([8.0, 8.0, 0.0])
    # no suppression: every frame of the plateau above the threshold is a trigger
    det0 = det_curve(probs, events, labels, keywords, CFG, hours, sweep=[0.5], suppression_s=0.0)
    plateau = int(87.5 / hop) - int(85 / hop)
    assert det0["false_alarms"] == [3 + plateau]  # the 3-frame spike on "b" is 3 triggers too


def test_window_overlap_defines_a_hit():
    """A trigger is a hit exactly while its window [i*hop, i*hop + 0.985 s) overlaps the word."""
    n, hop = 1000, CFG.hop / SR
    events = [(5.0, 5.4, "a")]
    win = CFG.window_samples / SR
    first = int(np.floor((5.0 - win) / hop)) + 1       # first window reaching into the word
    last = int(np.ceil(5.4 / hop)) - 1                 # last window starting inside it
    for i, hit in ((first - 1, 0), (first, 1), (last, 1), (last + 1, 0)):
        probs = np.zeros((n, 1))
        probs[i, 0] = 1.0
        det = det_curve(probs, events, ["a"], ("a",), CFG, 1.0, sweep=[0.5])
        assert det["hits"] == [hit] and det["false_alarms"] == [1 - hit], i


def test_frr_at_interpolates_the_lower_envelope():
    curve = [[0.0, 1.0], [0.0, 0.4], [1.0, 0.2], [3.0, 0.1], [2.0, 0.3]]
    assert frr_at(curve, 0.0) == pytest.approx(0.4)
    assert frr_at(curve, 0.5) == pytest.approx(0.3)    # halfway from 0.4 to 0.2
    assert frr_at(curve, 2.0) == pytest.approx(0.2)    # (2, 0.3) is above the envelope
    assert frr_at(curve, 2.5) == pytest.approx(0.15)
    assert frr_at(curve, 10.0) == pytest.approx(0.1)


def test_threshold_sweep_is_sorted_and_reaches_near_one():
    t = thresholds()
    assert np.all(np.diff(t) > 0) and t[0] == pytest.approx(0.01) and t[-1] > 1 - 1e-6


# -- stream ----------------------------------------------------------------------------------

def _word(seed: int, seconds: float = 0.4) -> np.ndarray:
    from conftest import synth_speech

    return synth_speech(seconds, seed=seed)


def test_stream_is_reproducible_and_places_words_at_their_snr():
    from tfdenoise import mixtures

    rng = np.random.default_rng(0)
    noise = mixtures.Corpus((rng.standard_normal(SR * 30) * 3000).astype(np.int16),
                            np.array([0]), np.array([SR * 30]), ("n.wav",))
    kw = [(_word(i), "a") for i in range(3)]
    other = [(_word(10 + i), "b") for i in range(3)]
    s1 = build_stream(kw, other, noise, hours=0.02, seed=4, snr_db=(10.0, 10.0))
    s2 = build_stream(kw, other, noise, hours=0.02, seed=4, snr_db=(10.0, 10.0))
    assert np.array_equal(s1.audio, s2.audio) and s1.events == s2.events
    assert len(s1.audio) == int(0.02 * 3600 * SR) and s1.hours == pytest.approx(0.02)
    assert {e[2] for e in s1.events} == {"a", "b"}
    starts = [e[0] for e in s1.events]
    assert all(b - a >= 1.5 for a, b in zip(starts, starts[1:]))  # gaps of 1.5-5 s after each word
    s3 = build_stream(kw, other, noise, hours=0.02, seed=5)
    assert s3.events != s1.events
    with pytest.raises(InputError, match="needs keyword clips"):
        build_stream([], other, noise, hours=0.01)


def test_tflite_model_scores_like_the_checkpoint(run, subset, tmp_path):
    """A float .tflite of the run's best model: same accuracy through the LiteRT runner; a
    full-int8 one (int8 input and output, quantized by the runner) agrees on most clips."""
    from tfdenoise.keras import tf
    from tfdenoise.converters.kws_runner import TFLiteKws as TfliteKws
    from tfdenoise.kws.evaluate import accuracy

    model, task, _ = load_model(run / "best")
    converter = tf.lite.TFLiteConverter.from_keras_model(model.model)
    path = tmp_path / "m.tflite"
    path.write_bytes(converter.convert())
    (tmp_path / "m.json").write_text(json.dumps({"labels": model.labels}))
    lite = TfliteKws(path)
    clips = data.dataset_split(data.list_clips(subset), 0.2)[2]
    a, b = accuracy(model, clips, task), accuracy(lite, clips, task)
    assert a["confusion"] == b["confusion"]
    result = evaluate_kws(path, EvalRequest(data=str(subset), hours=0.01))
    assert result["format"] == "tflite" and result["accuracy"] == a["accuracy"]

    from tfdenoise.kws.train import centred_windows
    calib = centred_windows(data.load_clips(clips), model.features)
    converter = tf.lite.TFLiteConverter.from_keras_model(model.model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([w[None]] for w in calib)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    int8 = tmp_path / "m8.tflite"
    int8.write_bytes(converter.convert())
    (tmp_path / "m8.json").write_text(json.dumps({"labels": model.labels}))
    lite8 = TfliteKws(int8)
    p_float, p_int8 = model.predict_windows(calib), lite8.predict_windows(calib)
    assert p_int8.dtype == np.float32 and abs(p_int8.sum(-1) - 1).max() < 0.05
    assert np.mean(p_float.argmax(-1) == p_int8.argmax(-1)) >= 0.9


def test_partial_window_keeps_20_to_50_percent_at_an_edge():
    from tfdenoise.kws.train import partial_window

    cfg = KwsTrainConfig(model="dnn", data="x", out="o", gain_db=(0.0, 0.0))
    rng = np.random.default_rng(0)
    x = np.full(8000, 0.5, np.float32)
    edges = set()
    for _ in range(20):
        w = partial_window(x, rng, None, CFG.window_samples, cfg)
        inside = np.flatnonzero(w)
        assert len(w) == CFG.window_samples and 0.2 * 8000 <= len(inside) <= 0.5 * 8000
        assert inside[0] == 0 or inside[-1] == len(w) - 1
        edges.add(inside[0] == 0)
    assert edges == {True, False}


def test_default_model_is_the_shipped_one():
    from tfdenoise.kws_evaluate import resolve_model
    from tfdenoise.pretrained import DEFAULT_KWS_MODEL, kws_checkpoint

    path = resolve_model(None)
    assert path == kws_checkpoint() and path.name == DEFAULT_KWS_MODEL
    model, task, info = load_model(path)
    card = json.loads((path / "card.json").read_text())
    assert list(task.labels) == card["labels"] and info["split"] == "dataset"
    assert set(card["det"]["frr_at_fa_per_hour"]) == {"0.5", "1", "2"}
    assert (path / "MODEL_CARD.md").is_file() and (path / "det.png").is_file()
