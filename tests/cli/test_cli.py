"""The CLI: one-line errors, exit codes, plugins listing, training through the console script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from trendcli.cli import main

from ..conftest import needs_fmnist


def run(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def test_unknown_architecture_lists_valid_names(capsys):
    code, _, err = run(["train", "--arch", "resnet9000", "--out", "/tmp/never"], capsys)
    assert code == 1
    assert err.startswith("error: unknown architecture 'resnet9000'; known: ") and "smallcnn" in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_unknown_quantizer_and_dataset(capsys):
    code, _, err = run(["train", "--input-quant", "q99", "--out", "/tmp/never"], capsys)
    assert code == 1 and "unknown input quantizer 'q99'" in err and "ht_fs" in err
    code, _, err = run(["train", "--dataset", "mnist-9", "--out", "/tmp/never"], capsys)
    assert code == 1 and "unknown dataset 'mnist-9'" in err and "fashion_mnist" in err


def test_invalid_numbers_are_usage_errors(capsys):
    code, _, err = run(["train", "--epochs", "many", "--out", "/tmp/never"], capsys)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1
    code, _, err = run(["train", "--epochs", "0", "--out", "/tmp/never"], capsys)
    assert code == 1 and "--epochs must be at least 1" in err
    code, _, err = run(["train", "--weight-bits", "0", "--out", "/tmp/never"], capsys)
    assert code == 1 and "--weight-bits must be 1..16" in err


def test_missing_data_says_where_it_looked(tmp_path, capsys):
    code, _, err = run(["train", "--dataset", "cifar10", "--data-dir", str(tmp_path), "--out", str(tmp_path / "m")], capsys)
    assert code == 1 and str(tmp_path) in err and err.count("\n") == 1
    assert not (tmp_path / "m").exists()


def test_plugins_lists_builtins_and_example(capsys):
    code, out, _ = run(["plugins", "--json"], capsys)
    rows = json.loads(out)
    by_name = {(r["kind"], r["name"]): r["plugin"] for r in rows}
    assert code == 0
    assert by_name[("architecture", "smallcnn")] == "trendcli"
    assert by_name[("architecture", "example_mlp")] == "trend-example"
    assert by_name[("input quantizer", "binarize")] == "trend-example"


def test_datasets_command(capsys):
    code, out, _ = run(["datasets", "--json"], capsys)
    assert code == 0
    names = {r["name"] for r in json.loads(out)}
    assert {"fashion_mnist", "cifar10", "cifar100", "imagenet"} <= names


@needs_fmnist
def test_example_plugin_trains_through_the_console_script(tmp_path):
    trend = shutil.which("trend") or str(__import__("pathlib").Path(sys.executable).parent / "trend")
    out = tmp_path / "example"
    proc = subprocess.run(
        [trend, "train", "--arch", "example-mlp", "--input-quant", "binarize", "--epochs", "1",
         "--limit-train", "512", "--device", "cpu", "--out", str(out), "--json"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    card = json.loads(proc.stdout)
    assert card["spec"]["arch"] == "example_mlp" and card["spec"]["input_quant"] == "binarize"
    # 4 SGD steps on 512 binarized images: clearly above chance (0.1), far from converged
    assert card["accuracy"]["test"] > 0.2
    assert (out / "model.safetensors").is_file()
