"""Ensemble: members with weight hashes, JSON round trip, hash checks, vote plumbing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from trendcli.ensemble.members import FORMAT, Ensemble, Member, resolve_member_path, unique_ids, vote_logits
from trendcli.errors import ModelFileError, UsageError
from trendcli.hookspecs import hookimpl
from trendcli.registry import Registry, get_registry, set_registry
from trendcli.zoo.spec import ModelSpec
from trendcli.zoo.files import build_model, save_model

SPEC = dict(arch="tiny_linear", dataset="fashion_mnist", in_channels=1, image_size=28, num_classes=10, mean=(0.5,), std=(0.5,))


class TinyArch:
    """An in-test plugin: a linear classifier, so these tests need no built-in architecture."""

    @hookimpl
    def trend_architectures(self):
        def tiny_linear(in_channels, num_classes, image_size, width=1.0, pretrained=False):
            return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(in_channels * image_size**2, num_classes))

        return {"tiny_linear": tiny_linear}


def make_model_dir(root: Path, name: str, seed: int, input_quant: str = "fp") -> Path:
    torch.manual_seed(seed)
    model = build_model(ModelSpec(**SPEC, input_quant=input_quant))
    return save_model(model, root / name, {"id": f"tiny.{input_quant}.s{seed}"})


@pytest.fixture(scope="module", autouse=True)
def registry():
    previous = get_registry()
    reg = Registry()
    reg.register(TinyArch(), name="tiny-arch")
    set_registry(reg)
    yield reg
    set_registry(previous)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory, registry) -> list[Path]:
    root = tmp_path_factory.mktemp("zoo")
    return [make_model_dir(root, "fp", 0), make_model_dir(root, "q1", 1, "q1"), make_model_dir(root, "q2", 2, "q2")]


def test_json_round_trip_keeps_members_policy_and_seed(zoo, tmp_path):
    ens = Ensemble.from_dirs(zoo, tie_break="paper", seed=7, design={"score": 0.25})
    path = ens.save(tmp_path / "e.json")
    data = json.loads(path.read_text())
    assert data["format"] == FORMAT == "trendcli-ensemble/2"
    assert [m["id"] for m in data["members"]] == ["tiny.fp.s0", "tiny.q1.s1", "tiny.q2.s2"]
    assert all(len(m["weights_sha256"]) == 64 for m in data["members"])
    back = Ensemble.load(path)
    assert back == ens  # members, tie_break, seed, per_image, design
    assert back.tie_break == "paper" and back.seed == 7 and back.design == {"score": 0.25}


def test_load_rejects_a_member_whose_weights_changed(zoo, tmp_path):
    ens = Ensemble.from_dirs(zoo[:2])
    path = ens.save(tmp_path / "e.json")
    data = json.loads(path.read_text())
    data["members"][1]["weights_sha256"] = "0" * 64
    path.write_text(json.dumps(data))
    with pytest.raises(ModelFileError, match="changed after the ensemble"):
        Ensemble.load(path)
    assert Ensemble.load(path, verify=False).members[1].weights_sha256 == "0" * 64


@pytest.mark.parametrize(
    "content, message",
    [("{not json", "not valid JSON"), ('{"format": "other"}', "not a trendcli ensemble"), ('{"format": "trendcli-ensemble/1", "members": [{"id": "x"}]}', "every member needs")],
)
def test_load_rejects_foreign_files(tmp_path, content, message):
    path = tmp_path / "e.json"
    path.write_text(content)
    with pytest.raises(ModelFileError, match=message):
        Ensemble.load(path)


def test_missing_file_and_bad_policy_are_usage_errors(tmp_path, zoo):
    with pytest.raises(UsageError, match="trend design"):
        Ensemble.load(tmp_path / "none.json")
    with pytest.raises(UsageError, match="unknown tie-break policy 'coin'"):
        Ensemble.from_dirs(zoo[:2], tie_break="coin")


def test_relative_member_paths_resolve_beside_the_ensemble_file(zoo, tmp_path, monkeypatch):
    ens_file = zoo[0].parent / "e.json"
    data = Ensemble([Member("fp", "a", "x")]).to_dict()  # "fp" as written: relative to the file
    ens_file.write_text(json.dumps(data))
    monkeypatch.chdir(tmp_path)  # "fp" does not exist here
    assert resolve_member_path("fp", ens_file) == zoo[0].parent / "fp"
    assert Ensemble.load(ens_file, verify=False).member_dirs() == [zoo[0].parent / "fp"]


def test_models_load_with_per_image_override(zoo):
    ens = Ensemble.from_dirs(zoo, per_image=True)
    models = ens.models()
    assert [m.spec.per_image for m in models] == [True, True, True]
    assert [m.meta["ensemble_id"] for m in models] == ens.ids
    assert [m.spec.per_image for m in ens.models(per_image=False)] == [False, False, False]


def test_predict_is_the_vote_of_the_members_logits(zoo):
    ens = Ensemble.from_dirs(zoo)
    models = ens.models()
    x = torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    logits = ens.logits(x, models)
    assert len(logits) == 3 and logits[0].shape == (6, 10)
    # the default tie-break is the paper's seeded random one (what the findings use)
    assert ens.tie_break == "paper" and ens.seed == 0
    assert torch.equal(ens.predict(x, models), vote_logits(logits, "paper", 0))
    assert torch.equal(ens.predict(x, models, tie_break="first"), vote_logits(logits, "first"))


# Hand-made logits (3 members, 3 images, 4 classes): argmaxes per image
#   image 0: members vote 2, 2, 1 -> majority 2 under every policy
#   image 1: members vote 0, 3, 1 -> all different: "first" -> 0 (member 0's class)
#   image 2: members vote 1, 3, 3 -> majority 3
LOGITS = [
    torch.tensor([[0.0, 0, 5, 0], [9.0, 0, 0, 0], [0.0, 5, 0, 0]]),
    torch.tensor([[0.0, 0, 5, 0], [0.0, 0, 0, 1], [0.0, 0, 0, 5]]),
    torch.tensor([[0.0, 5, 0, 0], [0.0, 2, 0, 0], [0.0, 0, 0, 5]]),
]


def test_tie_break_policies_through_the_ensemble_plumbing():
    assert vote_logits(LOGITS, "first").tolist() == [2, 0, 3]
    # reordered [1, 2, 0]: image 1 votes 3, 1, 0 -> "first" takes 3. "confidence": mean softmax
    # class 0 = (0.175 + 0.096 + 0.9996) / 3 = 0.42 > class 1 = 0.30 > class 3 = 0.19 -> 0
    reordered = [LOGITS[1], LOGITS[2], LOGITS[0]]
    assert vote_logits(reordered, "first").tolist() == [2, 3, 3]
    assert vote_logits(reordered, "confidence").tolist() == [2, 0, 3]
    # "paper": image 1 has max votes 1 -> a seeded random member's label; same seed, same answer
    a, b = vote_logits(LOGITS, "paper", seed=3), vote_logits(LOGITS, "paper", seed=3)
    assert torch.equal(a, b) and a[0] == 2 and a[2] == 3 and a[1] in (0, 3, 1)
    seen = {int(vote_logits(LOGITS, "paper", seed=s)[1]) for s in range(30)}
    assert seen == {0, 3, 1}  # every member's label can be drawn


def test_ensemble_predict_uses_its_own_policy_and_seed(zoo, monkeypatch):
    ens = Ensemble.from_dirs(zoo, tie_break="paper", seed=11)
    calls = []

    import trendcli.ensemble.vote as vote

    real = vote.predict
    monkeypatch.setattr(vote, "predict", lambda lg, tie_break, seed: calls.append((tie_break, seed)) or real(lg, tie_break, seed))
    ens.predict(torch.zeros(2, 1, 28, 28))
    ens.predict(torch.zeros(2, 1, 28, 28), tie_break="confidence")
    assert calls == [("paper", 11), ("confidence", 11)]


def test_unique_ids_and_subset(zoo):
    assert unique_ids(["a", "b", "a", "a"]) == ["a", "b", "a#2", "a#3"]
    ens = Ensemble.from_dirs(zoo, tie_break="confidence")
    sub = ens.subset(["tiny.q2.s2", "tiny.fp.s0"])
    assert sub.ids == ["tiny.q2.s2", "tiny.fp.s0"] and sub.tie_break == "confidence"
    with pytest.raises(UsageError, match="not ensemble members"):
        ens.subset(["nope"])


def test_member_paths_are_stored_relative_to_the_file_and_survive_a_move(zoo, tmp_path, monkeypatch):
    import shutil

    run = tmp_path / "run"
    (run / "models").mkdir(parents=True)
    dirs = [shutil.copytree(d, run / "models" / Path(d).name) for d in zoo[:2]]
    ens = Ensemble.from_dirs(dirs)
    path = ens.save(run / "ensembles" / "e.json")
    data = json.loads(path.read_text())
    assert [m["path"] for m in data["members"]] == [f"../models/{Path(d).name}" for d in dirs]
    moved = tmp_path / "moved"
    shutil.move(str(run), str(moved))
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    back = Ensemble.load(moved / "ensembles" / "e.json")  # verify=True: every sha256 checked
    assert back.member_dirs() == [moved / "models" / Path(d).name for d in dirs]


def test_version_1_files_stay_readable(zoo, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ens = Ensemble.from_dirs(zoo[:2])
    data = ens.to_dict()
    data["format"] = "trendcli-ensemble/1"
    data["members"][0]["path"] = str(Path(zoo[0]).resolve())
    (tmp_path / "old.json").write_text(json.dumps(data))
    assert Ensemble.load(tmp_path / "old.json").ids == ens.ids
