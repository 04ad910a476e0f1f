"""Trust, aliasing: no output may overwrite an input or land inside an input folder (from the CLI:
exit code, one error line naming the path, every input's sha256 unchanged, nothing partial)."""
from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest


from trustkit import refused
from trustkit import audio_dir, ckpt, exported, model, no_work  # noqa: F401  (fixtures)


def test_report_json_onto_its_model(cli, tmp_path, model):
    line, _ = refused(cli, tmp_path, "report", [model, "--json", model], model, [model])
    assert "overwrite the input" in line


def test_report_folder_output_under_the_model_file(cli, tmp_path, model):
    # -o names the model file itself, as if it were a folder
    refused(cli, tmp_path, "report", [model, "-o", model], model, [model])


@pytest.mark.parametrize("target", ["weights.h5", "config.json", "x.tflite", "sub/x.tflite",
                                    "sub/../../ckpt/y.tflite"])
def test_export_into_its_checkpoint_folder(cli, tmp_path, ckpt, target):
    out = Path(f"{ckpt}/{target}")
    refused(cli, tmp_path, "export", [ckpt, "--fp32", "--no-check", "-o", out], out, [ckpt])


def test_export_all_into_its_checkpoint_folder(cli, tmp_path, ckpt):
    refused(cli, tmp_path, "export", [ckpt, "--all", "--no-check", "-o", ckpt], ckpt, [ckpt])


def test_export_json_into_its_checkpoint_folder(cli, tmp_path, ckpt):
    out, js = tmp_path / "m.tflite", ckpt / "config.json"
    refused(cli, tmp_path, "export", [ckpt, "--fp32", "--no-check", "-o", out, "--json", js],
            js, [ckpt])


def test_outputs_into_shipped_folders(cli, tmp_path):
    """``--pretrained`` and the default pairs are folders of the package: nothing may be written
    into them (new names here, so that a regression cannot destroy a shipped file)."""
    from tfdenoise.pretrained import checkpoint
    from tfdenoise.samples import pairs_dir

    shipped = checkpoint("gru128")
    out = shipped / "tflite" / "trust-test.tflite"
    refused(cli, tmp_path, "export", ["--pretrained", "gru128", "--fp32", "--no-check", "-o", out],
            out, [shipped])
    out = pairs_dir() / "clean" / "trust-test.json"
    refused(cli, tmp_path, "evaluate", ["--model", "noisy", "--json", out], out, [pairs_dir()])


def test_export_onto_its_recipe_and_into_its_calibration_folder(cli, tmp_path, ckpt):
    from tfdenoise.converters.calibration import list_clips

    recipe = Path(shutil.copy(Path(__file__).parents[1] / "converters/recipes/fp32.json",
                              tmp_path / "recipe.json"))
    calib = tmp_path / "calib"
    calib.mkdir()
    shutil.copy(list_clips()[0], calib)
    out = tmp_path / "m.tflite"
    refused(cli, tmp_path, "export", [ckpt, "--recipe", recipe, "--no-check", "-o", out,
                                      "--json", recipe], recipe, [ckpt, recipe, calib])
    bad = calib / "m.tflite"
    refused(cli, tmp_path, "export", [ckpt, "--calib-data", calib, "--fp32", "--no-check",
                                      "-o", bad], bad, [ckpt, recipe, calib])


@pytest.mark.parametrize("target", ["clean/u0.wav", "noisy/u1.wav", "scores.json", "."])
def test_evaluate_json_into_its_pairs(cli, tmp_path, pairs, ckpt, target):
    out = pairs / target
    refused(cli, tmp_path, "evaluate", ["--pairs", pairs, "--model", ckpt, "--jobs", "1",
                                        "--json", out], out, [pairs, ckpt])


def test_evaluate_json_onto_its_model(cli, tmp_path, pairs, model, ckpt):
    refused(cli, tmp_path, "evaluate", ["--pairs", pairs, "--model", model, "--jobs", "1",
                                        "--json", model], model, [pairs, model])
    out = ckpt / "scores.json"
    refused(cli, tmp_path, "evaluate", ["--pairs", pairs, "--model", ckpt, "--jobs", "1",
                                        "--json", out], out, [pairs, ckpt])


@pytest.mark.parametrize("target", ["enh", "enh/deeper", ".", "a.wav", "x.wav"])
def test_enhance_folder_into_itself(cli, tmp_path, audio_dir, ckpt, target):
    out = audio_dir / target if target != "." else audio_dir
    refused(cli, tmp_path, "enhance", [audio_dir, "-o", out, "--model", ckpt, "--jobs", "1"],
            out, [audio_dir, ckpt])


def test_enhance_folder_to_a_file(cli, tmp_path, audio_dir, ckpt):
    out = tmp_path / "out.wav"
    line, _ = refused(cli, tmp_path, "enhance", [audio_dir, "-o", out, "--model", ckpt],
                      out, [audio_dir, ckpt])
    assert "must be a folder" in line


def test_enhance_file_onto_itself(cli, tmp_path, wav, ckpt):
    refused(cli, tmp_path, "enhance", [wav, "-o", wav, "--model", ckpt], wav, [wav, ckpt])
    # the same, through its folder: tmp_path/in.wav -> tmp_path/in.wav
    refused(cli, tmp_path, "enhance", [wav, "-o", tmp_path, "--model", ckpt], tmp_path,
            [wav, ckpt])


def test_enhance_into_its_model(cli, tmp_path, wav, audio_dir, ckpt):
    out = ckpt / "x.wav"
    refused(cli, tmp_path, "enhance", [wav, "-o", out, "--model", ckpt], out, [wav, ckpt])
    refused(cli, tmp_path, "enhance", [wav, "-o", ckpt, "--model", ckpt], ckpt, [wav, ckpt])
    out = ckpt / "enhanced"
    refused(cli, tmp_path, "enhance", [audio_dir, "-o", out, "--model", ckpt], out,
            [audio_dir, ckpt])


def test_validate_json_onto_its_model(cli, tmp_path, model, pairs, ckpt):
    args = [model, "--pairs", pairs, "--checkpoint", ckpt, "--jobs", "1"]
    refused(cli, tmp_path, "validate", args + ["--json", model], model, [model, pairs, ckpt])
    md = pairs / "clean" / "t.md"
    refused(cli, tmp_path, "validate", args + ["--markdown", md], md, [model, pairs, ckpt])
    js = ckpt / "v.json"
    refused(cli, tmp_path, "validate", args + ["--json", js], js, [model, pairs, ckpt])


def test_output_that_is_a_hard_link_of_the_input(cli, tmp_path, model, wav, ckpt):
    link = tmp_path / "links" / "same.tflite"
    link.parent.mkdir()
    os.link(model, link)
    line, _ = refused(cli, tmp_path, "report", [model, "--json", link], link, [model, link])
    assert "overwrite the input" in line
    wlink = tmp_path / "links" / "same.wav"
    os.link(wav, wlink)
    refused(cli, tmp_path, "enhance", [wav, "-o", wlink, "--model", ckpt], wlink,
            [wav, wlink, ckpt])
    assert os.path.samefile(model, link) and os.path.samefile(wav, wlink)


def test_output_that_is_a_symlink_or_dotdot_spelling_of_the_input(cli, tmp_path, model, pairs, ckpt):
    sym = tmp_path / "sym.json"
    sym.symlink_to(model)
    refused(cli, tmp_path, "report", [model, "--json", sym], sym, [model, sym])
    dotdot = Path(f"{pairs}/clean/../noisy/../clean/u0.wav")
    refused(cli, tmp_path, "evaluate", ["--pairs", pairs, "--model", "noisy", "--json", dotdot],
            dotdot, [pairs])
    dirlink = tmp_path / "pairs-link"
    dirlink.symlink_to(pairs, target_is_directory=True)
    inside = dirlink / "scores.json"
    refused(cli, tmp_path, "evaluate", ["--pairs", pairs, "--model", "noisy", "--json", inside],
            inside, [pairs])


@pytest.mark.parametrize("cmd", ["report", "evaluate", "enhance", "export"])
def test_non_regular_output_is_refused_untouched(cli, tmp_path, model, pairs, wav, ckpt, cmd):
    """``--json /dev/null``-style outputs: a FIFO stays a FIFO (and is never opened)."""
    fifo = tmp_path / ("out.tflite" if cmd == "export" else
                       "out.wav" if cmd == "enhance" else "out.json")
    os.mkfifo(fifo)
    argv = {"report": [model, "--json", fifo],
            "evaluate": ["--pairs", pairs, "--model", "noisy", "--json", fifo],
            "enhance": [wav, "-o", fifo, "--model", ckpt],
            "export": [ckpt, "--fp32", "--no-check", "-o", fifo]}[cmd]
    line, _ = refused(cli, tmp_path, cmd, argv, fifo, [model, pairs, wav, ckpt])
    assert "not a regular file" in line
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_existing_folder_as_output_file_is_refused(cli, tmp_path, model):
    folder = tmp_path / "r.json"
    folder.mkdir()
    line, _ = refused(cli, tmp_path, "report", [model, "--json", folder], folder, [model])
    assert "not a regular file" in line and folder.is_dir()
