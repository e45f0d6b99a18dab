"""The ``minstn`` command line: train / evaluate / info, argument errors, exit codes."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from minstn.experiments import cli

ROOT = Path(__file__).resolve().parents[1]
MNIST_DIR = Path(os.environ.get("MINSTN_DATA", ROOT.parent / "shared" / "data" / "mnist"))
SMALL = ["--epochs", "1", "--train-size", "256", "--test-size", "128", "--no-progress"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """``minstn train --epochs 1 --train-size 256 --test-size 128 --out DIR`` with the
    default model (ST-FCN on RTS digits), run in-process once for the tests below."""
    out = tmp_path_factory.mktemp("st-fcn")
    args = ["train", *SMALL, "--out", str(out), "--threads", "2"]
    if MNIST_DIR.is_dir():
        args += ["--data-dir", str(MNIST_DIR)]
    assert cli.main(args) == 0
    return out


def test_train_threads_flag_is_applied_and_saved(trained):
    import minstn as mt
    assert mt.get_num_threads() == 2
    assert json.loads((trained / "config.json").read_text())["threads"] == 2


def test_train_writes_checkpoint_metrics_and_figures(trained):
    for name in ("model.npz", "config.json", "metrics.json", "curves.png", "transformer.png"):
        assert (trained / name).is_file(), name
    config = json.loads((trained / "config.json").read_text())
    assert (config["model"], config["distortion"], config["in_size"]) == ("st-fcn", "rts", 42)
    assert (config["schedule"], config["lr"], config["epochs"]) == ("onecycle", 3e-3, 1)


def test_evaluate_reports_the_same_error(trained, capsys):
    metrics = json.loads((trained / "metrics.json").read_text())
    assert cli.main(["evaluate", str(trained)]) == 0
    assert f"test error {100 * metrics['test_error']:.2f}%" in capsys.readouterr().out


def test_python_dash_m_minstn(tmp_path):
    """The module entry point, in a fresh process (a small FCN on clean glyphs: no
    sampler, so no Numba compilation in the new process)."""
    out = tmp_path / "run"
    env = dict(os.environ, MINSTN_DATA=str(tmp_path / "no-mnist"), XDG_CACHE_HOME=str(tmp_path / "cache"))
    proc = subprocess.run(
        [sys.executable, "-m", "minstn", "train", *SMALL, "--model", "fcn", "--distortion", "none",
         "--out", str(out)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "MNIST not found in" in proc.stderr and "glyph" in proc.stderr
    assert "test error" in proc.stdout
    assert (out / "curves.png").is_file() and (out / "metrics.json").is_file()
    proc = subprocess.run([sys.executable, "-m", "minstn", "evaluate", str(out)], capture_output=True,
                          text=True, env=env, timeout=300)
    error = json.loads((out / "metrics.json").read_text())["test_error"]
    assert f"test error {100 * error:.2f}%" in proc.stdout


@pytest.mark.parametrize("args, message", [
    (["train", "--epochs", "0"], "--epochs: must be >= 1"),
    (["train", "--train-size", "-5"], "--train-size: must be >= 1"),
    (["train", "--lr", "0"], "--lr: must be a positive finite number"),
    (["train", "--lr", "fast"], "--lr: expected a number"),
    (["train", "--threads", "0"], "--threads: must be >= 1"),
    (["train", "--model", "resnet"], "--model: invalid choice"),
    (["train", "--distortion", "blur"], "--distortion: invalid choice"),
    (["evaluate"], "the following arguments are required: checkpoint"),
    (["fly"], "invalid choice"),
])
def test_bad_arguments_exit_2_with_a_message(args, message, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(args)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_no_subcommand_prints_help(capsys):
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    assert "usage: minstn" in out and "train" in out and "evaluate" in out


def test_train_help_states_each_default_once(capsys):
    """Every flag's help says its default once: no "(default: None)" for unset flags, and
    no second "(default: ...)" after one the help text gives itself."""
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: None)" not in text and not re.search(r"\(default: [^)]*\) \(default:", text)
    assert "SGD momentum (default: 0.9)" in text and "(default: 15)" in text   # own text, and the formatter's


def test_info(capsys):
    assert cli.main(["info", "--data-dir", str(MNIST_DIR)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("minstn ") and "numba" in out and "MNIST test:" in out


def test_missing_checkpoint_is_a_message_not_a_traceback(tmp_path, capsys):
    assert cli.main(["evaluate", str(tmp_path)]) == 1
    assert "config.json not found" in capsys.readouterr().err


def test_diverged_run_exits_1(tmp_path, capsys):
    args = ["train", *SMALL, "--dataset", "glyphs", "--distortion", "none", "--model", "fcn", "--optimizer", "sgd",
            "--momentum", "0", "--lr", "1e30", "--out", str(tmp_path)]
    with pytest.warns(RuntimeWarning):  # numpy's overflow warnings on the way to inf
        assert cli.main(args) == 1
    assert "at epoch 1, step" in capsys.readouterr().err


def test_a_new_subcommand_is_one_function(capsys, monkeypatch):
    """Room for ``reproduce``: append an ``add_<name>`` function to SUBCOMMANDS."""
    def add_hello(subparsers):
        p = subparsers.add_parser("hello")
        p.set_defaults(handler=lambda args: print("hi") or 0)

    monkeypatch.setattr(cli, "SUBCOMMANDS", [*cli.SUBCOMMANDS, add_hello])
    assert cli.main(["hello"]) == 0
    assert capsys.readouterr().out == "hi\n"
