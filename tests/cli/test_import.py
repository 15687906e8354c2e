"""`trend import` and `trend audit` on the command line: one-line errors, JSON output."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from torch import nn

from trendcli.cli import main
from trendcli.data import load_split

from ..conftest import needs_fmnist


def run(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def _onnx(path, train_steps: int) -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))
    if train_steps:
        data, idx = load_split("fashion_mnist", "train")
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        for _ in range(train_steps):
            x, y = data.batch(idx[torch.randint(len(idx), (128,))])
            loss = nn.functional.cross_entropy(net((x - 0.286) / 0.353), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net.eval(), (torch.zeros(2, 1, 28, 28),), str(path), dynamo=False,
                          input_names=["x"], dynamic_axes={"x": {0: "n"}})


@needs_fmnist
def test_import_prints_the_card_and_refuses_a_model_at_chance(tmp_path, capsys):
    _onnx(tmp_path / "good.onnx", 100)
    code, out, err = run(["import", str(tmp_path / "good.onnx"), "--dataset", "fashion-mnist", "--mean", "0.286",
                          "--std", "0.353", "--black-box", "--limit-test", "500", "--out", str(tmp_path / "m"), "--json"],
                         capsys)
    assert code in (0, None), err
    card = json.loads(out)
    assert card["source"]["kind"] == "onnx" and card["source"]["white_box"] is False and card["accuracy"]["test_n"] == 500
    _onnx(tmp_path / "untrained.onnx", 0)
    code, _, err = run(["import", str(tmp_path / "untrained.onnx"), "--dataset", "fashion-mnist", "--normalizes-itself",
                        "--class-order", ",".join(str((c + 3) % 10) for c in range(10)), "--out", str(tmp_path / "u")],
                       capsys)
    assert code == 1 and err.startswith("error: ") and err.count("\n") == 1 and "chance is 0.100" in err
    assert not (tmp_path / "u").exists()


def test_import_without_a_normalization_and_audit_without_a_model_are_one_line_errors(tmp_path, capsys):
    (tmp_path / "m.onnx").write_bytes(b"")
    code, _, err = run(["import", str(tmp_path / "m.onnx"), "--dataset", "fashion-mnist", "--out", str(tmp_path / "x")],
                       capsys)
    assert code == 1 and "mean= and std=" in err and err.count("\n") == 1
    code, _, err = run(["audit", "--target", str(tmp_path / "m.onnx"), "--surrogates", str(tmp_path),
                        "--out", str(tmp_path / "audit")], capsys)
    assert code == 1 and "must be a model directory" in err and "trend import" in err and err.count("\n") == 1
