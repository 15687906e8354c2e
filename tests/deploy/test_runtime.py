"""Inference on onnxruntime: file validation, providers, predict, datasets, image files, the CLI."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from trendcli.cli import main
from trendcli.data import get_dataset
from trendcli.errors import IncompatibleModelsError, OnnxExportError, UsageError
from trendcli.deploy.export import export_ensemble
from trendcli.deploy.runtime import CPU, CUDA, TENSORRT, OnnxEnsemble, load_image, predict_files, run_dataset, select_providers
from trendcli.zoo.spec import ModelSpec
from trendcli.ensemble.vote import predict as vote_predict
from trendcli.zoo.files import build_model, load_model, save_model

INFO = get_dataset("fashion-mnist").info
needs_fmnist = pytest.mark.skipif(get_dataset("fashion-mnist").locate(None).found is None, reason="Fashion-MNIST not found")
MEMBERS = ("fp", "q1", "ht")


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    root = tmp_path_factory.mktemp("members")
    dirs = []
    for seed, q in enumerate(MEMBERS):
        torch.manual_seed(seed)
        spec = ModelSpec(arch="smallcnn", dataset=INFO.name, in_channels=1, image_size=28, num_classes=10,
                         mean=INFO.mean, std=INFO.std, width=0.5, input_quant=q)
        save_model(build_model(spec).eval(), root / q, {"id": q})
        dirs.append(root / q)
    return dirs


@pytest.fixture(scope="module")
def onnx_path(members, tmp_path_factory):
    return export_ensemble(members, tmp_path_factory.mktemp("onnx") / "e.onnx")


@pytest.fixture(scope="module")
def ens(onnx_path):
    return OnnxEnsemble(onnx_path, provider="cpu", threads=1)


def _run(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    return exc.value.code, out, err


# -- providers -------------------------------------------------------------------------------------


def test_provider_selection():
    assert select_providers("auto", [CPU]) == ([CPU], None)
    assert select_providers("auto", [TENSORRT, CUDA, CPU])[0] == [TENSORRT, CUDA, CPU]
    assert select_providers("auto", [CUDA, CPU])[0] == [CUDA, CPU]
    assert select_providers("cpu", [CUDA, CPU]) == ([CPU], None)
    assert select_providers("cuda", [CUDA, CPU]) == ([CUDA, CPU], None)
    providers, message = select_providers("tensorrt", ["AzureExecutionProvider", CPU])
    assert providers == [CPU]
    assert "tensorrt" in message and "not available" in message and "running on CPU" in message
    assert "AzureExecutionProvider, CPUExecutionProvider" in message and "onnxruntime-gpu" in message
    with pytest.raises(UsageError, match="unknown provider 'npu'"):
        select_providers("npu", [CPU])


def test_absent_provider_falls_back_with_a_message(onnx_path):
    import onnxruntime as ort

    if CUDA in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    ens = OnnxEnsemble(onnx_path, provider="cuda")
    assert ens.provider == CPU and len(ens.messages) == 1 and "cuda" in ens.messages[0]


# -- file validation -------------------------------------------------------------------------------


def test_missing_corrupt_and_foreign_files(tmp_path, onnx_path):
    with pytest.raises(OnnxExportError, match="no ONNX file at"):
        OnnxEnsemble(tmp_path / "absent.onnx")
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(OnnxExportError, match="corrupt.onnx is not a readable ONNX file"):
        OnnxEnsemble(corrupt)
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(onnx_path.read_bytes()[:5000])
    with pytest.raises(OnnxExportError, match="truncated.onnx"):
        OnnxEnsemble(truncated)
    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    foreign = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph), str(foreign))
    with pytest.raises(OnnxExportError, match="foreign.onnx is an ONNX model but not a trendcli ensemble"):
        OnnxEnsemble(foreign)
    wrong = onnx.load(str(onnx_path))
    wrong.metadata_props[0].value = json.dumps({"format": "something-else/9"})
    onnx.save(wrong, str(tmp_path / "wrong.onnx"))
    with pytest.raises(OnnxExportError, match="format 'something-else/9'"):
        OnnxEnsemble(tmp_path / "wrong.onnx")


def test_cli_error_is_one_line(tmp_path, capsys):
    (tmp_path / "bad.onnx").write_bytes(b"\x00\x01garbage")
    code, _, err = _run(["infer", "--onnx", str(tmp_path / "bad.onnx"), "--dataset", "fashion-mnist"], capsys)
    assert code == 1 and err.startswith("error: ") and "bad.onnx" in err and err.count("\n") == 1


# -- predict ---------------------------------------------------------------------------------------


def test_predict_matches_torch_and_accepts_numpy_and_torch(ens, members):
    x = torch.rand(9, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    models = [load_model(d, per_image=True) for d in members]
    with torch.inference_mode():
        logits = [m(x) for m in models]
    from_torch, from_numpy = ens.predict(x), ens.predict(x.numpy().astype(np.float64))
    np.testing.assert_array_equal(from_torch["label"], vote_predict(logits, "first").numpy())
    np.testing.assert_array_equal(from_torch["label"], from_numpy["label"])
    assert from_torch["member_labels"].shape == (9, 3) and from_torch["votes"].sum(1).tolist() == [3] * 9
    single = ens.predict(x[4])  # one [C, H, W] image
    assert single["label"].tolist() == [from_torch["label"][4]]
    empty = ens.predict(np.zeros((0, 1, 28, 28), np.float32))
    assert empty["label"].shape == (0,) and empty["votes"].shape == (0, 10)


def test_predict_rejects_bad_input(ens):
    with pytest.raises(UsageError, match=r"shape \[N, 1, 28, 28\]"):
        ens.predict(np.zeros((2, 3, 28, 28), np.float32))
    with pytest.raises(UsageError, match="in \\[0, 1\\].*max 255"):
        ens.predict(np.full((1, 1, 28, 28), 255.0, np.float32))


def test_metadata_properties(ens):
    assert ens.member_ids == list(MEMBERS)
    assert ens.class_names == list(INFO.class_names)
    assert ens.input_shape == (1, 28, 28) and ens.tie_break == "first" and ens.dataset == "fashion_mnist"


# -- image files -----------------------------------------------------------------------------------


def test_predict_files(ens, tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (28, 28), dtype=np.uint8)
    Image.fromarray(gray, "L").save(tmp_path / "gray.png")
    Image.fromarray(rng.integers(0, 256, (56, 40, 3), dtype=np.uint8), "RGB").save(tmp_path / "big.jpg")
    rows = predict_files(ens, [tmp_path / "gray.png", tmp_path / "big.jpg"])
    assert [r["path"] for r in rows] == [str(tmp_path / "gray.png"), str(tmp_path / "big.jpg")]
    assert rows[0]["resized_from"] is None and rows[1]["resized_from"] == [40, 56]
    direct = ens.predict(gray[None, None].astype(np.float32) / 255)
    assert rows[0]["label"] == int(direct["label"][0]) and rows[0]["class"] == INFO.class_names[rows[0]["label"]]
    assert rows[0]["member_labels"] == dict(zip(MEMBERS, direct["member_labels"][0].tolist()))
    arr, _ = load_image(tmp_path / "big.jpg", (1, 28, 28))
    assert arr.shape == (1, 28, 28) and 0 <= arr.min() and arr.max() <= 1
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(UsageError, match="cannot read .*notes.png as an image"):
        predict_files(ens, [tmp_path / "notes.png"])


# -- datasets --------------------------------------------------------------------------------------


@needs_fmnist
def test_run_dataset(ens, members):
    from trendcli.data import load_split

    result = run_dataset(ens, "fashion-mnist", limit=300, batch_size=128)
    data, idx = load_split("fashion_mnist", "test")
    x, y = data.batch(idx[:300])
    direct = ens.predict(x)
    np.testing.assert_array_equal(result.pred, direct["label"])
    np.testing.assert_array_equal(result.labels, y.numpy())
    s = result.summary()
    assert s["n"] == 300 and s["accuracy"] == float((direct["label"] == y.numpy()).mean())
    assert s["member_accuracy"]["q1"] == float((direct["member_labels"][:, 1] == y.numpy()).mean())
    assert s["agreement"]["pairwise"]["fp"]["fp"] == 1.0
    agree = float((direct["member_labels"][:, 0] == direct["member_labels"][:, 2]).mean())
    assert s["agreement"]["pairwise"]["fp"]["ht"] == agree == s["agreement"]["pairwise"]["ht"]["fp"]
    assert len(result.latencies_s) == 3 and s["latency_ms"]["p50"] <= s["latency_ms"]["p99"] and s["images_per_s"] > 0
    with pytest.raises(IncompatibleModelsError, match="exported for fashion_mnist, not cifar10"):
        run_dataset(ens, "cifar10")


# -- the CLI ---------------------------------------------------------------------------------------


@needs_fmnist
def test_cli_export_then_infer_images(members, tmp_path, capsys):
    from PIL import Image

    out = tmp_path / "cli.onnx"
    argv = ["export-ensemble", "--out", str(out), "--tie-break", "confidence", "--infer-limit", "40", "--json"]
    for d in members:
        argv += ["--model", str(d)]
    code, stdout, _ = _run(argv, capsys)
    meta = json.loads(stdout)
    assert code == 0 and meta["tie_break"] == "confidence" and [m["id"] for m in meta["members"]] == list(MEMBERS)
    # the export's dataset check, written beside the file whichever command exports
    check = json.loads((tmp_path / "cli.infer.json").read_text())
    assert check == meta["check"] and check["n"] == 40 and 0 <= check["accuracy"] <= 1
    for i in range(3):
        Image.fromarray(np.full((28, 28), 80 * i, np.uint8), "L").save(tmp_path / f"{i}.png")
    code, stdout, err = _run(["infer", "--onnx", str(out), "--provider", "cpu", "--images", str(tmp_path / "0.png"),
                              str(tmp_path / "1.png"), str(tmp_path / "2.png")], capsys)
    rows = [json.loads(line) for line in stdout.splitlines()]
    assert code == 0 and [r["path"] for r in rows] == [str(tmp_path / f"{i}.png") for i in range(3)]
    assert all(sum(r["votes"]) == 3 for r in rows)


def test_cli_needs_one_source(onnx_path, capsys):
    code, _, err = _run(["infer", "--onnx", str(onnx_path)], capsys)
    assert code == 1 and "give either --dataset NAME or --images PATH" in err
    code, _, err = _run(["export-ensemble", "--out", "/tmp/never.onnx"], capsys)
    assert code == 1 and "give either --ensemble E.json or one --model DIR" in err


@needs_fmnist
def test_cli_infer_dataset_json(onnx_path, capsys):
    code, stdout, _ = _run(["infer", "--onnx", str(onnx_path), "--dataset", "fashion-mnist", "--limit", "64",
                            "--batch-size", "32", "--provider", "cpu", "--json"], capsys)
    summary = json.loads(stdout)
    assert code == 0 and summary["n"] == 64 and 0 <= summary["accuracy"] <= 1 and summary["provider"] == CPU
