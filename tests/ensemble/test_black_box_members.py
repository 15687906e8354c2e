"""An evaluated ensemble with a black-box member (an ONNX file run in onnxruntime): transfer and
gradient-free attacks only, every count checked against onnxruntime run here."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from trendcli.adversarial.store import AdvStore
from trendcli.cli import main
from trendcli.data import load_split
from trendcli.ensemble.evaluation import EvalConfig, evaluate
from trendcli.ensemble.members import Ensemble
from trendcli.ensemble.worst_case import WorstCaseConfig
from trendcli.errors import UsageError
from trendcli.stats import decode_bits
from trendcli.zoo.blackbox import open_session, run_session
from trendcli.zoo.files import load_model

from ..byo import MEAN, STD, byo_package, import_black_box, import_white_box
from ..conftest import needs_fmnist

pytestmark = [needs_fmnist, pytest.mark.slow]

LIMIT = 96
EPS = 0.1
SQUARE = WorstCaseConfig(square_queries=40, apgd_iter=5, apgd_targets=2, masking_images=32)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """White-box members a and c (factory imports), black-box member b (ONNX), outside source s."""
    root = tmp_path_factory.mktemp("bbens")
    with byo_package(root):
        a = import_white_box(root, root / "a", 1, 32)
        b, onnx_path = import_black_box(root, root / "b", 2, 48)
        c = import_white_box(root, root / "c", 3, 40)
        s = import_white_box(root, root / "s", 4, 64)
        yield {"root": root, "members": [a, b, c], "source": s, "onnx": onnx_path}


def _config(zoo, store, **kw):
    return EvalConfig(**{"attacks": None, "eps": (EPS,), "limit": LIMIT, "transfer_from": str(zoo["source"]),
                         "store": str(store), "device": "cpu", "tie_break": "first", "worst_case": SQUARE, **kw})


def _first_vote(labels: np.ndarray) -> np.ndarray:
    """The majority label per row of [N, K] member labels; a tie goes to the earliest member's label."""
    out = []
    for row in labels:
        counts = {c: int((row == c).sum()) for c in row}
        top = max(counts.values())
        out.append(next(c for c in row if counts[c] == top))
    return np.array(out)


def _labels_by_hand(zoo, images: np.ndarray) -> np.ndarray:
    """[N, 3] labels of a, b, c: a and c in torch, b in onnxruntime on the z-scored images."""
    a, c = (load_model(d) for d in (zoo["members"][0], zoo["members"][2]))
    x = torch.from_numpy(images)
    with torch.inference_mode():
        la, lc = a(x).argmax(1).numpy(), c(x).argmax(1).numpy()
    lb = run_session(open_session(zoo["onnx"]), ((images - MEAN) / STD).astype(np.float32)).argmax(1)
    return np.stack([la, lb, lc], 1)


def test_transfer_and_square_on_an_ensemble_with_a_black_box_member(zoo, tmp_path):
    ens = Ensemble.from_dirs(zoo["members"], tie_break="first")
    ev = evaluate(ens, _config(zoo, tmp_path / "adv"), tmp_path / "out")
    data = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert data["ensemble"]["black_box"] == ["b"]
    assert data["settings"]["attacks"] == ["square"] and data["settings"]["member_attack"] == "square"
    kinds = sorted((s["kind"], s["attack"], tuple(s["source"])) for s in data["sets"])
    assert kinds == [("ensemble", "square", ("a", "b", "c")), ("member", "square", ("a",)), ("member", "square", ("b",)),
                     ("member", "square", ("c",)), ("prefix", "square", ("a", "b")), ("transfer", "pgd", ("s",))]
    assert data["domination"] is None and "black-box" in data["not_run"]["domination"]
    store = AdvStore(tmp_path / "adv")
    # the transfer set: the vote and every member recounted here, b through onnxruntime
    transfer = next(s for s in ev.sets if s.kind == "transfer")
    with store.get(transfer.key) as advset:
        adv, y = advset.read_adv(), advset.labels
    labels = _labels_by_hand(zoo, adv)
    vote_ok = _first_vote(labels) == y
    assert decode_bits(transfer.per_image["ensemble"]).tolist() == vote_ok.tolist()
    assert transfer.ensemble_accuracy == pytest.approx(vote_ok.mean())
    for k, m in enumerate("abc"):
        assert decode_bits(transfer.per_image["members"][m]).tolist() == (labels[:, k] == y).tolist()
    # Square on the vote: within eps, and the recorded accuracy is the vote recounted here
    square = next(s for s in ev.sets if s.kind == "ensemble")
    with store.get(square.key) as advset:
        adv, indices, y = advset.read_adv(), advset.indices, advset.labels
        assert advset.spec["params"]["n_queries"] == 40
    test, _ = load_split("fashion_mnist", "test")
    clean, _ = test.batch(torch.as_tensor(np.array(indices)))
    clean = clean.numpy()
    assert float(np.abs(adv - clean).max()) <= EPS + 1e-6
    assert square.ensemble_accuracy == pytest.approx((_first_vote(_labels_by_hand(zoo, adv)) == y).mean())
    # Square on b alone ran on b's onnxruntime outputs: its accuracy there is b's own on those images
    member_b = next(s for s in ev.sets if s.kind == "member" and s.source == ["b"])
    with store.get(member_b.key) as advset:
        adv, y = advset.read_adv(), advset.labels
    assert member_b.source_accuracy == pytest.approx((_labels_by_hand(zoo, adv)[:, 1] == y).mean())
    claims = data["claims"]
    assert claims["agd_beats_dag_at_small_eps"]["verdict"] == "not measured"
    assert claims["ensemble_beats_members_black_box"]["verdict"] in ("holds", "does not hold", "inconclusive")
    assert "Square on each member" in claims["ensemble_beats_members_worst_case"]["this_run"]


@pytest.mark.parametrize("kw, needs", [({"attacks": ("agd",)}, "agd"), ({"member_attack": "pgd"}, "pgd")])
def test_a_gradient_attack_on_an_ensemble_with_a_black_box_member_is_one_clear_error(zoo, tmp_path, kw, needs):
    ens = Ensemble.from_dirs(zoo["members"], tie_break="first")
    with pytest.raises(UsageError) as exc:
        evaluate(ens, _config(zoo, tmp_path / "adv", **kw), tmp_path / "out")
    assert str(exc.value) == (
        "model b is black-box (ONNX run in onnxruntime): use a transfer or gradient-free attack (square); "
        f"{needs} needs gradients (evaluate with --attack square --member-attack square, and --transfer-from)"
    )
    assert not (tmp_path / "out").exists() and not list((tmp_path / "adv").glob("**/*.h5"))


def test_the_cli_evaluates_member_directories_and_refuses_a_gradient_rule(zoo, tmp_path, capsys):
    dirs = [arg for d in zoo["members"] for arg in ("--model", str(d))]
    common = ["--eps", str(EPS), "--limit", str(LIMIT), "--transfer-from", str(zoo["source"]), "--square-queries", "40",
              "--tie-break", "first", "--store", str(tmp_path / "adv"), "--device", "cpu"]
    with pytest.raises(SystemExit) as exit_:
        main(["evaluate", *dirs, "--attack", "agd", *common, "--out", str(tmp_path / "refused")])
    err = capsys.readouterr().err
    assert exit_.value.code != 0 and "model b is black-box" in err and "Traceback" not in err
    assert not (tmp_path / "refused").exists()
    with pytest.raises(SystemExit) as exit_:
        main(["evaluate", *dirs, *common, "--out", str(tmp_path / "out")])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "not run: domination" in out and "square" in out
    assert json.loads((tmp_path / "out" / "evaluation.json").read_text())["ensemble"]["members"] == ["a", "b", "c"]


def test_the_worst_case_protocol_runs_what_needs_no_gradients_of_the_black_box_member(zoo, tmp_path):
    ens = Ensemble.from_dirs(zoo["members"], tie_break="first")
    ev = evaluate(ens, _config(zoo, tmp_path / "adv", protocol="worst-case", sizes=False), tmp_path / "out")
    worst, masking = ev.worst_case, ev.masking
    for step in ("apgd on the ensemble", "apgd_t on the ensemble", "apgd on b", "apgd_t on b"):
        assert "needs gradients; b black-box" in worst["not_run"][step]
    assert "apgd on a" not in worst["not_run"] and "apgd_t on c" not in worst["not_run"]
    ens_attacks = [s["attack"] for s in worst["ensemble"]["sets"]]
    assert ens_attacks == ["square", "transfer (pgd on s)"]  # the evaluation's own Square set is not run twice
    assert [s["attack"] for s in worst["members"]["a"]["sets"]] == ["square", "apgd", "apgd_t", "transfer (pgd on s)"]
    assert [s["attack"] for s in worst["members"]["b"]["sets"]] == ["square", "transfer (pgd on s)"]
    assert worst["members"]["b"]["robust"]["n"] == LIMIT
    flags = {f["flag"]: f for f in masking["members"]["b"]}
    assert flags["large_eps_short"]["numbers"]["attack"] == "square"  # the gradient-free probe on b
    assert {f["flag"]: f for f in masking["ensemble"]}["not_monotone_steps"]["fired"] is None


def test_design_over_a_square_matrix_takes_the_black_box_model(zoo, tmp_path):
    from trendcli.ensemble.selection import run_design
    from trendcli.transfer.matrix import run_matrix

    matrix = run_matrix(zoo["members"], tmp_path / "m", "square", {"eps": EPS, "n_queries": 40}, limit=LIMIT,
                        device="cpu", store=tmp_path / "adv")
    assert matrix.matrix.tm.shape == (3, 3) and not np.isnan(matrix.matrix.tm[1, 0])  # b is a source of Square
    design = run_design(matrix.files["json"], 2, tmp_path / "ens.json", ["b"], tie_break="first")
    assert "b" in design.result.best.members


def test_the_export_splices_the_black_box_file_into_the_one_graph(zoo, tmp_path):
    import onnx

    from trendcli.deploy.export import export_ensemble
    from trendcli.deploy.runtime import OnnxEnsemble

    path = export_ensemble(Ensemble.from_dirs(zoo["members"], tie_break="first"), tmp_path / "ens.onnx")
    proto = onnx.load(str(path))
    assert not [n for n in proto.graph.node if n.domain == "trendcli.blackbox"]  # every placeholder replaced
    assert sum(n.name.startswith("blackbox0/") for n in proto.graph.node) == sum(1 for _ in onnx.load(str(zoo["onnx"])).graph.node)
    test, idx = load_split("fashion_mnist", "test")
    images, y = test.batch(idx[:LIMIT])
    out = OnnxEnsemble(path, provider="cpu").predict(images.numpy())
    labels = _labels_by_hand(zoo, images.numpy())
    # member b inside the exported graph: the ONNX file's own logits on the z-scored images
    expected_b = run_session(open_session(zoo["onnx"]), ((images.numpy() - MEAN) / STD).astype(np.float32))
    np.testing.assert_allclose(out["member_logits"][:, 1], expected_b, rtol=1e-5, atol=1e-5)
    assert out["member_labels"].tolist() == labels.tolist()
    assert out["label"].tolist() == _first_vote(labels).tolist()


def test_an_onnx_member_with_a_fixed_batch_cannot_join_the_export(zoo, tmp_path):
    import warnings

    from trendcli.deploy.export import export_ensemble
    from trendcli.zoo.importing import import_model

    from ..byo import COMMON, byo_package, train_mlp

    with byo_package(tmp_path), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(train_mlp(5, 16), (torch.zeros(4, 1, 28, 28),), str(tmp_path / "fixed.onnx"), dynamo=False)
    import_model(tmp_path / "fixed.onnx", tmp_path / "fixed", black_box=True, **COMMON)
    with pytest.raises(UsageError) as exc:
        export_ensemble([zoo["members"][0], tmp_path / "fixed"], tmp_path / "ens.onnx")
    assert str(exc.value) == ("member fixed is an ONNX file with a fixed batch of 4; the exported ensemble takes any "
                              "batch: export the model with a dynamic batch axis and import it again")
    assert not list(tmp_path.glob("*ens.onnx*"))


def test_a_direction_rule_on_models_with_a_black_box_one_names_the_member(zoo, tmp_path):
    from trendcli.adversarial.generate import attack

    with pytest.raises(UsageError) as exc:
        attack(zoo["members"][:2], "agd", {"eps": EPS, "steps": 2}, limit=8, device="cpu", store=tmp_path / "adv")
    assert str(exc.value) == "model b is black-box (ONNX run in onnxruntime): use a transfer or gradient-free attack (square)"
