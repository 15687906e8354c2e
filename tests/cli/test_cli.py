"""The CLI: one-line errors, exit codes, plugins listing, training through the console script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from trendcli.cli import main
from trendcli.hookspecs import hookimpl
from trendcli.registry import Registry, lazy, set_registry

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
    assert code == 1 and "epochs must be at least 1" in err
    code, _, err = run(["train", "--weight-bits", "0", "--out", "/tmp/never"], capsys)
    assert code == 1 and "weight_bits must be 1..16" in err


def test_missing_data_says_where_it_looked(tmp_path, capsys):
    code, _, err = run(["train", "--dataset", "cifar10", "--data-dir", str(tmp_path), "--out", str(tmp_path / "m")], capsys)
    assert code == 1 and str(tmp_path) in err and err.count("\n") == 1
    assert not (tmp_path / "m").exists()


def test_plugins_lists_builtins_and_example(capsys):
    code, out, _ = run(["plugins", "--json"], capsys)
    data = json.loads(out)
    by_name = {(r["kind"], r["name"]): r for r in data["names"]}
    assert code == 0
    assert by_name[("architecture", "smallcnn")]["plugin"] == "trendcli"
    assert by_name[("architecture", "example_mlp")]["plugin"] == "trend-example"
    assert by_name[("input quantizer", "binarize")]["plugin"] == "trend-example"
    assert by_name[("attack", "pgd")]["description"] == "PGD, L-inf (Madry et al. 2018, arXiv:1706.06083)"
    assert all(r["description"] for r in data["names"]), "every name has a one-line description"


def test_plugins_shows_each_distribution_with_version_and_hooks(capsys):
    from importlib.metadata import version

    code, out, _ = run(["plugins", "--json"], capsys)
    dists = {d["distribution"]: d for d in json.loads(out)["plugins"]}
    assert code == 0
    assert dists["trendcli"]["version"] == version("trendcli")
    assert "trend_attacks" in dists["trendcli"]["hooks"] and "trend_direction_rules" in dists["trendcli"]["hooks"]
    assert dists["trend-example"]["hooks"] == ["trend_architectures", "trend_input_quantizers"]


def test_trend_plugins_naming_no_installed_distribution_is_one_error_line(monkeypatch, capsys):
    monkeypatch.setenv("TREND_PLUGINS", "trendcli,not-installed")
    set_registry(None)  # a fresh process-wide registry reads the variable
    try:
        code, _, err = run(["plugins"], capsys)
    finally:
        set_registry(None)
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("error: TREND_PLUGINS names not-installed, not an installed trendcli plugin; installed: ")
    assert "trend-example" in err and "trendcli" in err


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


def test_no_command_shows_the_help(capsys):
    code, out, err = run([], capsys)
    assert code == 0 and err == ""
    assert out.startswith("Usage: trend [OPTIONS] COMMAND [ARGS]...\n") and "\n  train " in out


def test_plugins_table_shows_versions_hooks_and_descriptions(capsys):
    from importlib.metadata import version

    code, out, _ = run(["plugins"], capsys)
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith("│ trendcli "))
    assert version("trendcli") in row and "trend_attacks" in row and "trend_direction_rules" in row
    assert any(" pgd " in line and "Madry et al. 2018" in line for line in out.splitlines())


class _BracketPlugin:
    @hookimpl
    def trend_attacks(self):
        return {"bracketed": lazy("colorsys:rgb_to_hls", "1[x > 0] and [bold]not markup[/bold]")}


def test_plugins_table_prints_descriptions_as_written(capsys):
    reg = Registry(load_entrypoints=False)
    reg.register(_BracketPlugin(), name="bracket-plugin")
    set_registry(reg)
    try:
        code, out, _ = run(["plugins"], capsys)
    finally:
        set_registry(None)
    assert code == 0 and "1[x > 0] and [bold]not markup[/bold]" in out
