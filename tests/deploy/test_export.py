"""ONNX export of an ensemble: parity with torch for every input quantizer, the vote, metadata."""

from __future__ import annotations

import json
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from trendcli.data import get_dataset
from trendcli.errors import IncompatibleModelsError, OnnxExportError, UsageError
from trendcli.deploy.export import EnsembleGraph, export_ensemble, vote_tensors
from trendcli.deploy.onnx_ops import FloydSteinbergExport, floyd_steinberg_skewed
from trendcli.quantizers.error_diffusion import floyd_steinberg
from trendcli.zoo.spec import ModelSpec
from trendcli.ensemble.vote import predict as vote_predict
from trendcli.ensemble.vote import votes as vote_counts
from trendcli.zoo.files import build_model, load_model, save_model

INFO = get_dataset("fashion-mnist").info
needs_fmnist = pytest.mark.skipif(get_dataset("fashion-mnist").locate(None).found is None, reason="Fashion-MNIST not found")
INPUT_QUANTS = ["fp"] + [f"q{b}" for b in range(1, 9)] + ["ht", "ht_fs"]
# (input quantizer, weight bits, activation bits): weight- and activation-quantized members
LOW_BIT = [("fp", 2, 32), ("fp", 32, 2), ("q2", 1, 1), ("q1", 4, 4)]
BATCH_SIZES = (1, 7, 256)
LOGIT_TOL = 1e-4


def _spec(**kw) -> ModelSpec:
    # width 0.5 (8, 16, 16 channels) keeps 15 members fast; parity is about the quantizers
    return ModelSpec(arch="smallcnn", dataset=INFO.name, in_channels=1, image_size=28, num_classes=10,
                     mean=INFO.mean, std=INFO.std, width=0.5, **kw)


def _member(tmp_dir, name: str, seed: int, **kw):
    """A random-init member with random BatchNorm statistics (so activations spread over [0, 1])."""
    torch.manual_seed(seed)
    model = build_model(_spec(**kw)).eval()
    for bn in model.modules():
        if isinstance(bn, torch.nn.BatchNorm2d):
            bn.running_mean.uniform_(-0.3, 0.3)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.data.uniform_(0.5, 1.5)
            bn.bias.data.uniform_(-0.2, 0.5)
    save_model(model, tmp_dir / name, {"id": name})
    return tmp_dir / name


def _images(n: int, seed: int) -> torch.Tensor:
    """Dataset-like images: 8-bit levels k/255 with dark backgrounds, plus edge cases."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 1, 28, 28), generator=g).float() / 255
    x = x * (torch.rand(n, 1, 28, 28, generator=g) > 0.4)  # 40% background zeros
    if n >= 3:
        x[0] = 0.5  # constant image: Qb's Delta = 0, HT's spread = 0
        x[1] = (torch.rand(1, 28, 28, generator=g) > 0.5).float()  # binary 0/1
        x[2, :, :14] = 1.0  # saturated half
    return x


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """Saved members: every built-in input quantizer, then weight/activation-quantized ones."""
    root = tmp_path_factory.mktemp("zoo")
    dirs = [_member(root, q, i, input_quant=q) for i, q in enumerate(INPUT_QUANTS)]
    for i, (q, w, a) in enumerate(LOW_BIT):
        dirs.append(_member(root, f"{q}-w{w}-a{a}", 100 + i, input_quant=q, weight_bits=w, act_bits=a))
    return dirs


@pytest.fixture(scope="module")
def exported(zoo, tmp_path_factory):
    path = export_ensemble(zoo, tmp_path_factory.mktemp("onnx") / "all.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return path, session


@pytest.fixture(scope="module")
def models(zoo):
    """Each member loaded per-image, as torch evaluates it (library quantizers, unfolded weights)."""
    return [load_model(d, per_image=True) for d in zoo]


@pytest.fixture(scope="module")
def reference(models):
    """torch logits of every member, per batch size."""
    out = {}
    for n in BATCH_SIZES:
        x = _images(n, seed=n)
        with torch.inference_mode():
            out[n] = (x, [m(x) for m in models])
    return out


@pytest.fixture(scope="module")
def onnx_out(exported, reference):
    _, session = exported
    return {n: session.run(None, {"images": x.numpy()}) for n, (x, _) in reference.items()}


# -- Floyd-Steinberg export form -------------------------------------------------------------------


def test_skewed_floyd_steinberg_by_hand():
    # [[.4, .4], [.3, .3]]: (0,0) v=.4 -> 0, e=.4; (0,1) v=.4+7/16*.4=.575 -> 1, e=-.425;
    # (1,0) v=.3+5/16*.4+3/16*(-.425)=.3453 -> 0, e=.3453;
    # (1,1) v=.3+1/16*.4+5/16*(-.425)+7/16*.3453=.3433 -> 0
    x = torch.tensor([[[[0.4, 0.4], [0.3, 0.3]]]])
    expected = torch.tensor([[[[0.0, 1.0], [0.0, 0.0]]]])
    assert torch.equal(floyd_steinberg_skewed(x), expected)
    assert torch.equal(floyd_steinberg(x), expected)


@pytest.mark.parametrize("shape", [(5, 1, 28, 28), (3, 3, 32, 32), (2, 2, 5, 9), (2, 1, 9, 4), (1, 1, 1, 6), (1, 1, 6, 1)])
def test_skewed_floyd_steinberg_equals_library(shape):
    x = torch.rand(shape, generator=torch.Generator().manual_seed(sum(shape)))
    assert torch.equal(floyd_steinberg_skewed(x), floyd_steinberg(x))


def test_floyd_steinberg_onnx_equals_torch_bit_for_bit(tmp_path):
    path = tmp_path / "fs.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(FloydSteinbergExport(), (torch.rand(2, 3, 12, 10),), str(path), dynamo=False,
                          input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for n in BATCH_SIZES:
        x = torch.rand(n, 3, 12, 10, generator=torch.Generator().manual_seed(n))
        (got,) = session.run(None, {"x": x.numpy()})
        np.testing.assert_array_equal(got, floyd_steinberg(x).numpy())


# -- the vote --------------------------------------------------------------------------------------


def _logits_for(labels: list[list[int]], classes: int = 4, confidence: list[list[float]] | None = None) -> torch.Tensor:
    """[N, K, classes] logits whose argmax per member is ``labels[n][k]``."""
    n, k = len(labels), len(labels[0])
    logits = torch.zeros(n, k, classes)
    for i in range(n):
        for j in range(k):
            logits[i, j, labels[i][j]] = 1.0 if confidence is None else confidence[i][j]
    return logits


def test_vote_first_by_hand():
    # 5 members' labels per image -> label
    # [2, 1, 1, 0, 3]: class 1 has 2 votes, the others 1 -> 1
    # [2, 1, 0, 3, 3]: class 3 has 2 votes -> 3
    # [3, 1, 1, 3, 0]: 3 and 1 tied at 2 votes; member 0 voted 3 -> 3
    # [0, 2, 1, 2, 1]: 2 and 1 tied at 2; member 0's class 0 is not a top class, member 1's 2 is -> 2
    # [4, 1, 0, 3, 2]: every class 1 vote -> the first member's 4
    labels = [[2, 1, 1, 0, 3], [2, 1, 0, 3, 3], [3, 1, 1, 3, 0], [0, 2, 1, 2, 1], [4, 1, 0, 3, 2]]
    logits = _logits_for(labels, classes=5)
    label, votes, member_labels = vote_tensors(logits, "first")
    assert member_labels.tolist() == labels
    assert votes[0].tolist() == [1, 2, 1, 1, 0]
    assert label.tolist() == [1, 3, 3, 2, 4]
    assert torch.equal(label, vote_predict(list(logits.unbind(1)), "first"))


def test_vote_confidence_by_hand():
    # 4 members, classes 0 and 2 tied at 2 votes; mean softmax decides.
    # image 0: members voting 2 are confident (logit 3), those voting 0 barely (logit 0.1) -> 2
    # image 1: the reverse -> 0
    labels = [[0, 2, 0, 2], [0, 2, 0, 2]]
    conf = [[0.1, 3.0, 0.1, 3.0], [3.0, 0.1, 3.0, 0.1]]
    logits = _logits_for(labels, confidence=conf)
    label, _, _ = vote_tensors(logits, "confidence")
    assert label.tolist() == [2, 0]
    assert torch.equal(label, vote_predict(list(logits.unbind(1)), "confidence"))


def test_vote_matches_library_on_random_logits():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(500, 4, 3, generator=g)  # 4 members, 3 classes: many ties
    per_member = list(logits.unbind(1))
    for policy in ("first", "confidence"):
        label, votes, _ = vote_tensors(logits, policy)
        assert torch.equal(label, vote_predict(per_member, policy))
        assert torch.equal(votes, vote_counts(per_member))


def test_paper_tie_break_is_refused(zoo, tmp_path):
    with pytest.raises(OnnxExportError, match="'paper'.*cannot be exported"):
        export_ensemble(zoo[:2], tmp_path / "e.onnx", tie_break="paper")
    with pytest.raises(UsageError, match="unknown tie-break"):
        export_ensemble(zoo[:2], tmp_path / "e.onnx", tie_break="loudest")
    assert not list(tmp_path.iterdir())


# -- parity ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", BATCH_SIZES)
@pytest.mark.parametrize("k", range(len(INPUT_QUANTS) + len(LOW_BIT)), ids=INPUT_QUANTS + [f"{q}-w{w}-a{a}" for q, w, a in LOW_BIT])
def test_member_parity(k, n, reference, onnx_out):
    _, logits = reference[n]
    _, _, member_labels, member_logits = onnx_out[n]
    torch_logits = logits[k].numpy()
    np.testing.assert_allclose(member_logits[:, k], torch_logits, rtol=0, atol=LOGIT_TOL)
    np.testing.assert_array_equal(member_labels[:, k], torch_logits.argmax(1))


@pytest.mark.parametrize("n", BATCH_SIZES)
def test_ensemble_parity(n, reference, onnx_out):
    _, logits = reference[n]
    label, votes, _, _ = onnx_out[n]
    np.testing.assert_array_equal(label, vote_predict(logits, "first").numpy())
    np.testing.assert_array_equal(votes, vote_counts(logits).numpy())
    assert label.dtype == np.int64 and votes.shape == (n, 10)


def test_torch_graph_is_what_is_exported(models, reference):
    """EnsembleGraph (folded weights, export form of ht_fs) computes the library's answer."""
    graph = EnsembleGraph(models).eval()
    x, logits = reference[7]
    with torch.inference_mode():
        label, _, _, member_logits = graph(x)
    assert torch.equal(label, vote_predict(logits, "first"))
    torch.testing.assert_close(member_logits, torch.stack(logits, 1), rtol=0, atol=1e-5)
    # folding happened on copies: the loaded members keep their parametrized float weights
    with torch.inference_mode():
        assert torch.equal(models[-1](x), logits[-1])
    assert any(torch.nn.utils.parametrize.is_parametrized(m) for m in models[-1].modules())


def test_prediction_does_not_depend_on_batch_mates(exported, reference):
    _, session = exported
    x, _ = reference[7]
    together = session.run(["label", "member_logits"], {"images": x.numpy()})
    alone = [session.run(["label", "member_logits"], {"images": x[i : i + 1].numpy()}) for i in range(7)]
    np.testing.assert_array_equal(together[0], np.concatenate([a[0] for a in alone]))
    np.testing.assert_allclose(together[1], np.concatenate([a[1] for a in alone]), rtol=0, atol=LOGIT_TOL)


def test_confidence_policy_parity(zoo, tmp_path):
    members = [zoo[0], zoo[1], zoo[9]]  # fp, q1, ht
    path = export_ensemble(members, tmp_path / "c.onnx", tie_break="confidence")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    models = [load_model(d, per_image=True) for d in members]
    x = _images(256, seed=5)
    with torch.inference_mode():
        logits = [m(x) for m in models]
    label, votes = session.run(["label", "votes"], {"images": x.numpy()})
    assert (votes.max(1) == 1).any(), "the test images should include three-way ties"
    np.testing.assert_array_equal(label, vote_predict(logits, "confidence").numpy())


@needs_fmnist
def test_parity_on_fashion_mnist_test_images(exported, models):
    from trendcli.data import load_split

    data, idx = load_split("fashion_mnist", "test")
    x, _ = data.batch(idx[:256])
    with torch.inference_mode():
        logits = [m(x) for m in models]
    _, session = exported
    label, member_logits = session.run(["label", "member_logits"], {"images": x.numpy()})
    np.testing.assert_array_equal(label, vote_predict(logits, "first").numpy())
    np.testing.assert_allclose(member_logits, torch.stack(logits, 1).numpy(), rtol=0, atol=LOGIT_TOL)


# -- the file --------------------------------------------------------------------------------------


def test_file_passes_checker_and_folds_weights(exported):
    path, _ = exported
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    ops = {n.op_type for n in proto.graph.node}
    assert "Tanh" not in ops  # DoReFa weight quantization folded into the stored weights
    assert "Round" in ops  # activation quantization stays as ops
    assert "Loop" not in ops and "Scan" not in ops  # ht_fs unrolled over its fixed wavefronts
    assert [i.name for i in proto.graph.input] == ["images"]
    assert [o.name for o in proto.graph.output] == ["label", "votes", "member_labels", "member_logits"]
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


def test_metadata(exported, zoo):
    path, session = exported
    meta = json.loads(session.get_modelmeta().custom_metadata_map["trendcli"])
    assert meta["format"] == "trendcli-onnx-ensemble/1"
    assert meta["trendcli_version"] == __import__("trendcli").__version__
    assert meta["dataset"] == "fashion_mnist"
    assert meta["class_names"] == list(INFO.class_names)
    assert meta["tie_break"] == "first" and meta["per_image"] is True and "per-image" in meta["per_image_note"]
    assert meta["input_shape"] == ["batch", 1, 28, 28]
    cards = [json.loads((d / "model.json").read_text()) for d in zoo]
    assert [m["id"] for m in meta["members"]] == [d.name for d in zoo]
    assert [m["weights_sha256"] for m in meta["members"]] == [c["weights_sha256"] for c in cards]
    assert [m["path"] for m in meta["members"]] == [str(d) for d in zoo]
    assert meta["members"][-1]["weight_bits"] == 4 and meta["members"][-1]["act_bits"] == 4


def test_ensemble_json_keeps_its_policy(zoo, tmp_path):
    from trendcli.ensemble.members import Ensemble

    ens_path = Ensemble.from_dirs(zoo[:3], tie_break="confidence").save(tmp_path / "e.json")
    out = export_ensemble(ens_path, tmp_path / "out" / "e.onnx")
    meta = json.loads(onnx.load(str(out)).metadata_props[0].value)
    assert meta["tie_break"] == "confidence" and len(meta["members"]) == 3
    assert sorted(p.name for p in out.parent.iterdir()) == ["e.onnx"]  # no temp files left


def test_incompatible_members_and_bad_opset(zoo, tmp_path):
    torch.manual_seed(0)
    other = build_model(ModelSpec(arch="smallcnn", dataset="cifar10", in_channels=3, image_size=32, num_classes=10,
                                  mean=(0.5,) * 3, std=(0.25,) * 3)).eval()
    save_model(other, tmp_path / "cifar", {"id": "cifar"})
    with pytest.raises(IncompatibleModelsError, match="must share one dataset"):
        export_ensemble([zoo[0], tmp_path / "cifar"], tmp_path / "e.onnx")
    with pytest.raises(UsageError, match="opset must be 13..20"):
        export_ensemble(zoo[:1], tmp_path / "e.onnx", opset=9)
    assert not (tmp_path / "e.onnx").exists()


# -- end to end (trains three members) -------------------------------------------------------------


@pytest.mark.slow
@needs_fmnist
def test_trained_fp_q1_ht_ensemble_matches_torch_on_test_and_adversarial_sets(tmp_path):
    """Done-when of the export: fp + q1 + ht trained members; the ONNX vote equals the torch
    per-image vote on all 10000 test images and on the store's adversarial sets, and
    `trend infer`'s accuracy equals `trend evaluate`'s clean accuracy (per-image)."""
    from trendcli.data import load_split
    from trendcli.ensemble.members import Ensemble
    from trendcli.ensemble.evaluation import EvalConfig, evaluate
    from trendcli.deploy.runtime import OnnxEnsemble, run_dataset
    from trendcli.adversarial.store import AdvStore
    from trendcli.zoo.training import TrainConfig, train

    dirs = []
    for q in ("fp", "q1", "ht"):
        train(TrainConfig(arch="smallcnn", epochs=1, limit_train=3000, input_quant=q, device="cpu"), tmp_path / q)
        dirs.append(tmp_path / q)
    ens_path = Ensemble.from_dirs(dirs, tie_break="first").save(tmp_path / "E.json")  # the exported vote
    ens = Ensemble.load(ens_path)
    onnx_path = export_ensemble(ens_path, tmp_path / "E.onnx")
    onnx.checker.check_model(onnx.load(str(onnx_path)), full_check=True)
    runtime = OnnxEnsemble(onnx_path, provider="cpu")
    models = ens.models(per_image=True)

    def check(x: torch.Tensor) -> None:
        out = runtime.predict(x)
        logits = ens.logits(x, models)
        np.testing.assert_array_equal(out["label"], vote_predict(logits, "first").numpy())
        np.testing.assert_allclose(out["member_logits"], torch.stack(logits, 1).numpy(), rtol=0, atol=LOGIT_TOL)

    run = run_dataset(runtime, batch_size=256)
    data, idx = load_split("fashion_mnist", "test")
    assert run.n == len(idx) == 10000
    torch_pred = []
    for start in range(0, len(idx), 1000):
        x, _ = data.batch(idx[start : start + 1000])
        check(x)
        torch_pred.append(ens.predict(x, models, tie_break="first"))  # what the export deploys
    np.testing.assert_array_equal(run.pred, torch.cat(torch_pred).numpy())

    store = tmp_path / "adv"
    evaluation = evaluate(ens_path, EvalConfig(attacks=("agd",), eps=(0.03,), steps=2, limit=500, per_image=True,
                                               sizes=False, domination=False, store=str(store), device="cpu"))
    assert evaluation.clean["ensemble"] == float((run.pred[:500] == run.labels[:500]).mean())
    sets = AdvStore(store).list()
    assert len(sets) == 4  # A-GD on the ensemble, PGD on each member
    for key in sets:
        advset = AdvStore(store).get(key)
        for _, _, x, _, _ in advset.iter_chunks(500):
            check(x)


@needs_fmnist
def test_run_export_writes_the_file_and_its_dataset_check(zoo, tmp_path):
    from trendcli.data import load_split
    from trendcli.deploy.export import check_path, run_export

    run = run_export(zoo[:3], tmp_path / "three.onnx", infer_limit=50)
    assert run.files == {"onnx": tmp_path / "three.onnx", "infer": tmp_path / "three.infer.json"}
    assert check_path(run.path) == run.files["infer"]
    written = json.loads(run.files["infer"].read_text())
    assert written["n"] == 50 and written["dataset"] == "fashion_mnist" and written["accuracy"] == run.check["accuracy"]
    # the check is the ONNX file's vote on the first 50 test images
    data, idx = load_split("fashion_mnist", "test")
    x, y = data.batch(idx[:50])
    session = ort.InferenceSession(str(run.path), providers=["CPUExecutionProvider"])
    (label,) = session.run(["label"], {"images": x.numpy()})
    assert written["accuracy"] == float((label == y.numpy()).mean())
