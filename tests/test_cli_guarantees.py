"""What the command line guarantees under bad input: nothing lost, nothing silently wrong,
a one-line message and exit status 2 (bad arguments) or 1 (a failure), never a traceback.

Each test names the group of the robustness issue it covers. The commands run for real,
on the embedded glyph digits (and on a copy of the real MNIST test files where the data's
identity is what is tested)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from minstn.data.idx import read_idx, write_idx
from minstn.experiments import cli

MNIST_DIR = Path(os.environ.get("MINSTN_DATA", Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"))
HAVE_MNIST = (MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file()
TINY = ["--dataset", "glyphs", "--model", "fcn", "--distortion", "none", "--epochs", "2", "--train-size", "128",
        "--test-size", "64", "--no-progress"]


def run(argv, capsys):
    """``minstn ARGV`` in this process: (exit status, stderr)."""
    try:
        status = cli.main(argv)
    except SystemExit as exc:       # argparse's own errors
        status = exc.code
    return status, capsys.readouterr().err


def one_line_error(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.startswith("minstn") and "error:" in line]
    assert "Traceback" not in err and len(lines) == 1, err
    return lines[0]


def strip_times(metrics: dict) -> dict:
    return {**metrics, "history": [{k: v for k, v in h.items() if k != "seconds"} for h in metrics["history"]]}


# --- group 1: data loss --------------------------------------------------------------

def test_a_run_folder_is_never_overwritten_unless_told(tmp_path, capsys):
    out = tmp_path / "run"
    assert run(["train", *TINY, "--out", str(out)], capsys)[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    status, err = run(["train", *TINY, "--lr", "0.01", "--out", str(out)], capsys)
    assert status == 2 and "is not empty" in one_line_error(err) and "--overwrite" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before        # untouched
    assert run(["train", *TINY, "--lr", "0.01", "--out", str(out), "--overwrite"], capsys)[0] == 0
    assert json.loads((out / "config.json").read_text())["lr"] == 0.01


def _signals_as_at_a_shell():
    """In the child before exec: SIGINT at its default and no signal blocked, as a shell
    starts a command. A child inherits an ignored SIGINT (and Python then never raises
    KeyboardInterrupt) or a blocked one from whatever state this test process is in."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def test_resume_after_an_interruption_gives_the_same_bytes(tmp_path, capsys):
    """An interrupted run, resumed, ends exactly where an uninterrupted one does."""
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    # enough epochs after the first that the signal always lands before the run ends
    argv = ["train", *TINY, "--epochs", "40", "--train-size", "512"]
    assert run([*argv, "--out", str(whole)], capsys)[0] == 0
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.Popen([sys.executable, "-m", "minstn", *argv, "--out", str(cut)], env=env,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_signals_as_at_a_shell)
    for line in proc.stderr:                     # stop it once epoch 1 is saved
        if line.startswith("epoch 1/40"):
            proc.send_signal(signal.SIGINT)
            break
    proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert json.loads((cut / "metrics.json").read_text())["status"] == "interrupted"
    status, err = run([*argv, "--out", str(cut)], capsys)
    assert status == 2 and "--resume" in err                 # not silently restarted
    assert run(["train", "--out", str(cut), "--resume", "--no-progress"], capsys)[0] == 0
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (whole, cut))
    assert strip_times(a) == strip_times(b)
    with np.load(whole / "model.npz") as wa, np.load(cut / "model.npz") as wb:
        assert all(np.array_equal(wa[k], wb[k]) for k in wa.files)


# --- group 2: silently wrong results --------------------------------------------------

@pytest.mark.skipif(not HAVE_MNIST, reason=f"MNIST test set not found in {MNIST_DIR}")
def test_evaluate_refuses_data_that_is_not_the_runs(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(MNIST_DIR / name, data / name)
    out = tmp_path / "run"
    argv = ["train", "--data-dir", str(data), "--model", "fcn", "--distortion", "none", "--epochs", "1",
            "--train-size", "200", "--test-size", "100", "--no-progress", "--out", str(out)]
    assert run(argv, capsys)[0] == 0
    assert run(["evaluate", str(out)], capsys)[0] == 0
    # a training split appears: the same options would now pick other test digits
    images = read_idx(data / "t10k-images-idx3-ubyte.gz")[:300]
    labels = read_idx(data / "t10k-labels-idx1-ubyte.gz")[:300]
    write_idx(data / "train-images-idx3-ubyte", images)
    write_idx(data / "train-labels-idx1-ubyte", labels)
    status, err = run(["evaluate", str(out)], capsys)
    assert status == 2 and "not the ones this run was tested on" in one_line_error(err)
    # the data is gone: an error, no download, no folder created
    shutil.rmtree(data)
    status, err = run(["evaluate", str(out)], capsys)
    assert status == 1 and "Traceback" not in err and not data.exists()


# --- group 3: tracebacks ---------------------------------------------------------------

def test_bad_output_paths_are_messages(tmp_path, capsys):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    for out in (a_file, a_file / "below"):
        status, err = run(["train", *TINY, "--out", str(out)], capsys)
        assert status == 2 and "file" in one_line_error(err)
    status, err = run(["reproduce", "table1", "--budget", "tiny", "--dataset", "glyphs", "--out", str(a_file),
                       "--models", "fcn", "--distortions", "r"], capsys)
    assert status in (1, 2) and "Traceback" not in err


@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage", "missing"])
def test_evaluate_on_a_broken_checkpoint_is_a_message(tmp_path, capsys, damage):
    out = tmp_path / "run"
    assert run(["train", *TINY, "--epochs", "1", "--out", str(out)], capsys)[0] == 0
    model = out / "model.npz"
    data = model.read_bytes()
    {"empty": lambda: model.write_bytes(b""), "truncated": lambda: model.write_bytes(data[: len(data) // 2]),
     "garbage": lambda: model.write_bytes(bytes(reversed(data))), "missing": model.unlink}[damage]()
    status, err = run(["evaluate", str(out)], capsys)
    assert status == 1 and "model.npz" in one_line_error(err)


def test_evaluate_on_a_broken_config_or_a_reproduce_cell(tmp_path, capsys):
    out = tmp_path / "run"
    assert run(["train", *TINY, "--epochs", "1", "--out", str(out)], capsys)[0] == 0
    config = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({k: v for k, v in config.items() if k != "in_size"}))
    status, err = run(["evaluate", str(out)], capsys)
    assert status in (1, 2) and "Traceback" not in err and "in_size" in err
    (out / "config.json").write_text("{not json")
    status, err = run(["evaluate", str(out)], capsys)
    assert status in (1, 2) and "config.json" in one_line_error(err)
    cells = tmp_path / "table"
    assert run(["reproduce", "table1", "--budget", "tiny", "--dataset", "glyphs", "--out", str(cells),
                "--models", "fcn", "--distortions", "r", "--no-figures"], capsys)[0] == 0
    status, err = run(["evaluate", str(cells / "runs" / "fcn-r")], capsys)
    assert status == 2 and "cell of `minstn reproduce`" in one_line_error(err)


def test_a_huge_training_set_is_a_message(tmp_path, capsys):
    status, err = run(["train", "--dataset", "glyphs", "--train-size", "1000000000", "--out", str(tmp_path / "r"),
                       "--no-progress"], capsys)
    assert status == 1 and "memory" in one_line_error(err)


def test_a_truncated_stored_cell_costs_its_figure_not_the_table(tmp_path, capsys):
    argv = ["reproduce", "table1", "--budget", "tiny", "--dataset", "glyphs", "--out", str(tmp_path),
            "--models", "fcn,st-fcn-aff", "--distortions", "r"]
    assert run(argv, capsys)[0] == 0
    model = tmp_path / "runs" / "st-fcn-aff-r" / "model.npz"
    model.write_bytes(model.read_bytes()[:100])
    status, err = run(argv, capsys)
    assert status == 0 and "no figure for st-fcn-aff-r" in err and "Traceback" not in err
    assert (tmp_path / "table1.md").is_file()


# --- group 4: unfinished runs ------------------------------------------------------------

def test_evaluate_refuses_an_unfinished_run(tmp_path, capsys):
    out = tmp_path / "run"
    status, _ = run(["train", *TINY, "--optimizer", "sgd", "--lr", "1e30", "--out", str(out)], capsys)
    assert status == 1 and json.loads((out / "metrics.json").read_text())["status"] == "diverged"
    status, err = run(["evaluate", str(out)], capsys)
    assert status == 2 and "did not finish (status diverged)" in one_line_error(err)
    status, err = run(["evaluate", str(out), "--allow-unfinished"], capsys)
    assert status == 0 and "unfinished run" in err


# --- group 7: a NaN theta ---------------------------------------------------------------

def test_a_nan_theta_stops_training(tmp_path):
    from minstn.experiments import TrainConfig, train

    said = []
    config = TrainConfig(dataset="glyphs", model="st-fcn", distortion="none", epochs=1, train_size=128, test_size=64,
                         progress=False, out=str(tmp_path))
    import minstn.nn.spatial as spatial

    real = spatial.SpatialTransformer.transform_params

    def poisoned(self, x):
        params = real(self, x)
        return params * float("nan")

    spatial.SpatialTransformer.transform_params = poisoned
    try:
        metrics = train(config, announce=said.append)
    finally:
        spatial.SpatialTransformer.transform_params = real
    assert metrics["status"] == "diverged" and "theta is not finite" in metrics["message"]
    assert "epoch 1, step 1" in metrics["message"]


# --- group 13: contradictory and empty arguments ------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["train", "--model", "fcn", "--transform", "tps"], "--transform: fcn has no spatial transformer"),
    (["train", "--optimizer", "adam", "--momentum", "0.9"], "--momentum: --optimizer adam has no momentum"),
    (["train", "--dataset", "glyphs", "--data-dir", "."], "contradict"),
    (["train", "--data-dir", "/no/such/folder"], "is not a folder"),
    (["train", "--schedule", "cosine", "--warmup", "0.2"], "--warmup goes with --schedule onecycle"),
    (["train", "--model", "cnn", "--guard"], "--guard: cnn has no spatial transformer"),
    (["train", "--resume", "--overwrite"], "contradict"),
    (["reproduce", "table1", "--models", ","], "no models"),
    (["reproduce", "table1", "--distortions", " , "], "no distortions"),
    (["reproduce", "table1", "--seed", "-1"], "--seed: must be >= 0"),
    (["reproduce", "table1", "--data-dir", "/no/such/folder"], "is not a folder"),
    (["reproduce", "table1", "--jobs", "0"], "--jobs: must be >= 1"),
    (["evaluate", "/no/such/run"], "not found"),
    (["train", "--epochs", "0"], "--epochs: must be >= 1"),
    (["train", "--model", "resnet"], "invalid choice: 'resnet'"),
    (["info", "--bogus"], "unrecognized arguments"),
])
def test_bad_arguments_exit_2_with_one_line(tmp_path, capsys, argv, message):
    status, err = run([*argv, *(["--out", str(tmp_path / "r")] if argv[0] == "train" else [])], capsys)
    assert status == (1 if argv[0] == "evaluate" else 2), err
    assert message in err and "Traceback" not in err


def test_debug_shows_the_traceback(capsys):
    status, err = run(["--debug", "evaluate", "/no/such/run"], capsys)
    assert status == 1 and "Traceback" in err


# --- SIGTERM and repeated Ctrl-C ------------------------------------------------------------

@pytest.mark.parametrize("signals", [[signal.SIGTERM], [signal.SIGINT] * 3])
def test_sigterm_and_repeated_ctrl_c_leave_a_finished_record(tmp_path, signals):
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.Popen([sys.executable, "-m", "minstn", "train", *TINY, "--epochs", "50", "--out", str(out)],
                            env=env, stderr=subprocess.PIPE, text=True, preexec_fn=_signals_as_at_a_shell)
    for line in proc.stderr:
        if line.startswith("epoch 1/50"):
            break
    for sig in signals:
        proc.send_signal(sig)
        time.sleep(0.002)
    proc.communicate(timeout=120)
    assert proc.returncode == (143 if signals[0] == signal.SIGTERM else 130)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "interrupted"
