"""TransferMatrix and compute_matrix: streaming counts, incremental extension, save/load, errors.

Unit tests replace trendcli.transfer.streaming.run_attack with a store-backed one-step FGSM on tiny
template classifiers (real .h5 files, real streaming); the slow test at the end trains two
smallcnn models and runs the real trendcli.adversarial.generate.attack.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from ..conftest import needs_fmnist
from trendcli.data import load_split
from trendcli.errors import IncompatibleModelsError
from trendcli.zoo.model import TrendModel
from trendcli.registry import get_registry
from trendcli.zoo.spec import ModelSpec
from trendcli.zoo.files import check_compatible, load_models
from trendcli.adversarial.store import AdvStore, content_key, make_spec
from trendcli.transfer.counts import transfer_counts

import trendcli.transfer.streaming as streaming_mod
from trendcli.transfer.counts import tm_bootstrap
from trendcli.transfer.matrix import TransferMatrix, compute_matrix

FMNIST = dict(dataset="fashion_mnist", in_channels=1, image_size=28, num_classes=10, mean=(0.2860,), std=(0.3530,))


# -- fakes ----------------------------------------------------------------------------------------


class Templates(nn.Module):
    """A linear classifier: logits = <x, class template> (class means plus seeded noise)."""

    def __init__(self, templates: torch.Tensor):
        super().__init__()
        self.linear = nn.Linear(templates[0].numel(), len(templates), bias=False)
        self.linear.weight.data.copy_(templates.flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))


_MEANS: dict = {}


def class_means() -> torch.Tensor:
    """Normalized class means of 1000 Fashion-MNIST images, [10, 1, 28, 28].

    From test images 5000..5999, far from the first few hundred the tests evaluate on
    (the train split takes seconds to load; this is a fixture, not a claim about accuracy).
    """
    if "m" not in _MEANS:
        data, idx = load_split("fashion_mnist", "test")
        x, y = data.batch(idx[5000:6000])
        x = (x - 0.2860) / 0.3530
        _MEANS["m"] = torch.stack([x[y == c].mean(0) for c in range(10)])
    return _MEANS["m"]


def template_model(seed: int, input_quant: str = "fp", noise: float = 0.6, **spec_kw) -> TrendModel:
    """An in-memory TrendModel; different seeds give different (correlated) decision rules."""
    spec = ModelSpec(arch="templates", **{**FMNIST, **spec_kw}, input_quant=input_quant)
    g = torch.Generator().manual_seed(seed)
    m = class_means()
    t = m + noise * m.std() * torch.randn(m.shape, generator=g)
    quant = get_registry().factory("input quantizer", input_quant)(per_image=False)
    model = TrendModel(spec, Templates(t), quant).eval()
    model.meta = {"id": f"templates.{input_quant}.s{seed}", "split": {"seed": 0}}
    return model


class FakeAttack:
    """One-step FGSM through the real store: same spec -> same key -> cache hit."""

    def __init__(self):
        self.calls: list[dict] = []

    def __call__(self, models, method, params, *, split="test", limit=None, batch_size=None, device="auto",
                 store="runs/adv", force=False, data_dir=None, progress=None, **_):
        model = models if isinstance(models, TrendModel) else load_models([models])[0]
        eps = float((params or {}).get("eps", 0.1))
        data, idx = load_split(model.spec.dataset, split, data_dir)
        idx = idx[:limit] if limit else idx
        spec = make_spec(weights_sha256=[model.meta["weights_sha256"]], attack=method, params={"eps": eps},
                         dataset=model.spec.dataset, split=split, indices=idx)
        key = content_key(spec)
        st = AdvStore(store)
        t0 = time.perf_counter()
        cached = st.get(key) is not None and not force
        if not cached:
            st.remove(key)
            with st.writer(key, spec, n=len(idx), image_shape=model.spec.input_shape, chunk_size=batch_size or 128) as w:
                for c in w.pending_chunks():
                    x, y = data.batch(idx[c.start : c.stop])
                    xr = x.clone().requires_grad_(True)
                    loss = nn.functional.cross_entropy(model(xr), y)
                    (grad,) = torch.autograd.grad(loss, xr)
                    adv = (x + eps * grad.sign()).clamp(0, 1)
                    with torch.no_grad():
                        w.write_chunk(c, indices=idx[c.start : c.stop], labels=y, adv=adv, clean=x,
                                      clean_pred=model(x).argmax(1), adv_pred=model(adv).argmax(1))
                w.finish()
        self.calls.append({"model": model.name, "eps": eps, "cached": cached})
        advset = st.get(key)
        return SimpleNamespace(advset=advset, cached=cached, key=key, clean_accuracy=float("nan"),
                               success_rate=advset.success_rate, seconds=time.perf_counter() - t0, images_per_s=0.0)


@pytest.fixture
def fake_attack(monkeypatch):
    fake = FakeAttack()
    monkeypatch.setattr(streaming_mod, "run_attack", fake)
    return fake


def direct_counts(models, store, limit, eps=0.1):
    """Reference: whole-array predictions (no streaming) and transfer_counts per pair."""
    data, idx = load_split("fashion_mnist", "test")
    x, y = data.batch(idx[:limit])
    k = len(models)
    out = np.zeros((3, k, k), dtype=np.int64)
    with torch.no_grad():
        clean = [m(x).argmax(1).numpy() for m in models]
        for s, src in enumerate(models):
            adv_set = FakeAttack()(src, "fgsm", {"eps": eps}, limit=limit, store=store).advset
            adv = torch.from_numpy(adv_set.read_adv())
            adv_pred = [m(adv).argmax(1).numpy() for m in models]
            for t in range(k):
                c = transfer_counts(y.numpy(), clean[s], adv_pred[s], clean[t], adv_pred[t])
                out[:, s, t] = c.n_c, c.n_g, c.n_t
    return out


# -- tests ----------------------------------------------------------------------------------------


@needs_fmnist
def test_streamed_counts_match_whole_array_counts_and_diagonal_is_one(tmp_path, fake_attack):
    models = [template_model(s) for s in (0, 1, 2)]
    m = compute_matrix(models, "fgsm", {"eps": 0.1}, limit=96, batch_size=32, device="cpu", store=tmp_path / "adv")
    ref = direct_counts(models, tmp_path / "adv", 96)
    np.testing.assert_array_equal(m.n_c, ref[0])
    np.testing.assert_array_equal(m.n_g, ref[1])
    np.testing.assert_array_equal(m.n_t, ref[2])
    assert (m.n_g > 0).all()  # not a vacuous comparison
    assert np.diag(m.tm).tolist() == [1.0, 1.0, 1.0]
    np.testing.assert_array_equal(np.diag(m.n_t), np.diag(m.n_g))
    assert m.computed_pairs == 9 and not m.cached
    assert len(fake_attack.calls) == 3


@needs_fmnist
def test_asymmetry_is_kept(tmp_path, fake_attack):
    # an fp model and a Q1 model of different templates transfer differently each way
    models = [template_model(0, "fp"), template_model(5, "q1", noise=1.0)]
    m = compute_matrix(models, "fgsm", {"eps": 0.15}, limit=96, batch_size=48, device="cpu", store=tmp_path)
    assert m.tm[0, 1] != m.tm[1, 0]
    sym = m.symmetric()
    assert sym[0, 1] == sym[1, 0] == pytest.approx((m.tm[0, 1] + m.tm[1, 0]) / 2)


@needs_fmnist
def test_incremental_add_matches_full_recompute_and_computes_only_new_row_and_column(tmp_path, fake_attack):
    models = [template_model(s) for s in (0, 1, 2, 3)]
    kw = dict(limit=64, batch_size=32, device="cpu", store=tmp_path / "adv")
    first = compute_matrix(models[:3], "fgsm", {"eps": 0.1}, **kw)
    first.save(tmp_path / "m.json")
    fake_attack.calls.clear()
    grown = compute_matrix(models, "fgsm", {"eps": 0.1}, previous=tmp_path / "m.json", **kw)
    assert grown.computed_pairs == 2 * 4 - 1 and grown.reused_pairs == 9
    # only the new source is attacked afresh; the old ones come from the store
    assert [c["cached"] for c in fake_attack.calls] == [True, True, True, False]
    full = compute_matrix(models, "fgsm", {"eps": 0.1}, **kw)
    for name in ("n_c", "n_g", "n_t"):
        np.testing.assert_array_equal(getattr(grown, name), getattr(full, name))
    # a rerun with nothing new is a cache hit end to end: no attack call at all
    fake_attack.calls.clear()
    again = compute_matrix(models, "fgsm", {"eps": 0.1}, previous=grown, **kw)
    assert again.cached and fake_attack.calls == []
    np.testing.assert_array_equal(again.n_t, full.n_t)
    # other settings: nothing is reused
    other = compute_matrix(models[:2], "fgsm", {"eps": 0.2}, previous=grown, **kw)
    assert other.computed_pairs == 4
    # the per-image outcomes come along with the reused pairs and give back the counts of eq. 1
    assert again.per_image == full.per_image
    clean, adv, known = TransferMatrix.load(again.save(tmp_path / "again.json")).outcome_arrays()
    assert known.all()
    reps = tm_bootstrap(clean, adv, np.ones((1, clean.shape[1])))[0]
    np.testing.assert_allclose(reps, full.tm, equal_nan=True)


@needs_fmnist
def test_save_load_round_trip_json_csv_png(tmp_path, fake_attack):
    models = [template_model(s) for s in (0, 1, 2)]
    m = compute_matrix(models, "fgsm", {"eps": 0.1}, limit=64, batch_size=64, device="cpu", store=tmp_path / "adv")
    paths = m.write(tmp_path / "out" / "toy", normalize="figure")
    data = json.loads(paths["json"].read_text())
    assert data["schema"] == "trendcli-matrix/1"
    assert data["names"] == m.names and data["n_images"] == 64 and data["split"] == "test"
    assert data["attack"]["method"] == "fgsm" and data["attack"]["params"] == {"eps": 0.1}
    assert set(data["store_keys"]) == set(m.names) and all(len(k) == 64 for k in data["store_keys"].values())
    assert data["normalization"] == "figure" and len(data["figure"]) == 3
    loaded = TransferMatrix.load(paths["json"])
    np.testing.assert_array_equal(loaded.n_t, m.n_t)
    np.testing.assert_array_equal(loaded.tm, m.tm)
    rows = paths["csv"].read_text().splitlines()
    assert rows[0].split(",")[-1] == "avg" and rows[-1].startswith("avg,")
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@needs_fmnist
def test_target_wrong_on_everything_gives_undefined_entries(tmp_path, fake_attack):
    class Constant(nn.Module):  # always predicts class 9 -> right only on class-9 images
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            out = torch.zeros(len(x), 10) + self.w + 0 * x.flatten(1).sum(1, keepdim=True)  # zero gradient
            out[:, 9] = 1.0
            return out

    good = template_model(0)
    bad = TrendModel(good.spec, Constant(), get_registry().factory("input quantizer", "fp")()).eval()
    bad.meta = {"id": "constant"}
    # the first 12 test images hold no class 9 (labels 9,2,1,1,6,1,4,6,5,7,4,5 -> the first is 9): use 1..12
    data, idx = load_split("fashion_mnist", "test")
    _, y = data.batch(idx[:12])
    assert (y == 9).sum() == 1
    m = compute_matrix([good, bad], "fgsm", {"eps": 0.1}, limit=12, batch_size=12, device="cpu", store=tmp_path)
    # bad is right on one image at most: C(good, bad) <= 1; the constant model is never fooled
    assert m.n_c[0, 1] <= 1
    assert m.n_g[1, 1] == 0 and math.isnan(m.tm[1, 1])  # source never fooled: undefined, not 1
    assert math.isnan(m.tm[1, 0])
    data = m.to_dict()
    assert data["tm"][1][1] is None and data["tm"][1][0] is None


def test_models_of_different_datasets_or_shapes_are_refused():
    a = SimpleNamespace(spec=ModelSpec(arch="x", **FMNIST), name="a")
    b = SimpleNamespace(spec=ModelSpec(arch="x", **{**FMNIST, "dataset": "cifar10"}), name="b")
    c = SimpleNamespace(spec=ModelSpec(arch="x", **{**FMNIST, "image_size": 32}), name="c")
    with pytest.raises(IncompatibleModelsError, match="b was trained on cifar10 but a on fashion_mnist"):
        check_compatible([a, b])
    with pytest.raises(IncompatibleModelsError, match=r"input.*shape \(1, 32, 32\)"):
        check_compatible([a, c])


def test_group_keys_and_seed_stats_from_model_entries():
    entries = [
        {"name": f"m{i}", "id": f"m{i}", "spec": {"arch": "smallcnn", "input_quant": q}, "train": {"optimizer": "sgd", "seed": s}}
        for i, (q, s) in enumerate([("fp", 0), ("fp", 1), ("q1", 0)])
    ]
    n_g = np.array([[10, 8, 6], [9, 10, 5], [4, 4, 10]])
    n_t = np.array([[10, 6, 3], [3, 10, 2], [1, 2, 10]])
    m = TransferMatrix(names=["m0", "m1", "m2"], model_dirs=[None] * 3, n_c=n_g, n_g=n_g, n_t=n_t,
                       clean_accuracy={}, models=entries)
    assert m.group_keys(["arch", "input_quant", "optimizer"]) == ["smallcnn/fp/sgd"] * 2 + ["smallcnn/q1/sgd"]
    st = m.group_stats(["input_quant"])
    # fp->fp: pairs (0,1) 6/8 and (1,0) 3/9 -> N_t mean (6+3)/2 = 4.5
    assert st.n_t_mean[0, 0] == pytest.approx(4.5)
    assert st.tm_mean[0, 0] == pytest.approx((6 / 8 + 3 / 9) / 2)
    with pytest.raises(Exception, match="unknown group_by field 'colour'"):
        m.group_keys(["colour"])


@needs_fmnist
def test_model_dirs_extend_and_rerun(tmp_path, fake_attack):
    from trendcli.zoo.files import build_model, save_model

    dirs = []
    for seed in range(3):
        torch.manual_seed(seed)
        spec = ModelSpec(arch="smallcnn", **FMNIST)
        d = save_model(build_model(spec), tmp_path / f"m{seed}", {"id": f"smallcnn.fp-w32-a32.sgd.s{seed}", "train": {"seed": seed}})
        dirs.append(d)
    kw = dict(limit=32, batch_size=32, device="cpu", store=tmp_path / "adv")
    m2 = compute_matrix(dirs[:2], "fgsm", {"eps": 0.1}, **kw)
    m3 = m2.extend([dirs[2]], device="cpu", store=tmp_path / "adv")
    assert m3.names[-1] == "smallcnn.fp-w32-a32.sgd.s2" and m3.computed_pairs == 5
    full = compute_matrix(dirs, "fgsm", {"eps": 0.1}, **kw)
    np.testing.assert_array_equal(m3.n_t, full.n_t)
    np.testing.assert_array_equal(m3.n_c, full.n_c)


@pytest.mark.slow
@needs_fmnist
def test_end_to_end_real_attack_on_trained_models(tmp_path):
    pytest.importorskip("trendcli.adversarial.generate")
    from trendcli.zoo.training import TrainConfig, train

    dirs = []
    for quant, seed in (("fp", 0), ("q1", 0)):
        cfg = TrainConfig(arch="smallcnn", input_quant=quant, seed=seed, epochs=1, limit_train=2000, device="cpu")
        train(cfg, tmp_path / f"{quant}{seed}")
        dirs.append(tmp_path / f"{quant}{seed}")
    params = {"eps": 0.1, "alpha": 0.02, "steps": 5}
    kw = dict(limit=128, batch_size=64, device="cpu", store=tmp_path / "adv")
    m = compute_matrix(dirs, "pgd", params, **kw)
    assert not m.cached and all(not s["cached"] for s in m.sources)
    assert (np.diag(m.n_g) > 0).all() and np.diag(m.tm).tolist() == [1.0, 1.0]
    assert 0 <= m.tm[0, 1] <= 1 and 0 <= m.tm[1, 0] <= 1
    paths = m.write(tmp_path / "mat")
    # rerun from the JSON: nothing attacked or evaluated
    again = compute_matrix(dirs, "pgd", params, previous=paths["json"], **kw)
    assert again.cached
    # a fresh matrix (no previous) finds every set in the store
    fresh = compute_matrix(dirs, "pgd", params, **kw)
    assert all(s["cached"] for s in fresh.sources)
    np.testing.assert_array_equal(fresh.n_t, m.n_t)


def _saved_smallcnn(path: Path, seed: int, **spec_kw) -> Path:
    from trendcli.zoo.files import build_model, save_model

    torch.manual_seed(seed)
    spec = ModelSpec(arch="smallcnn", **{**FMNIST, **spec_kw})
    return save_model(build_model(spec), path, {"id": f"smallcnn.fp-w32-a32.sgd.s{seed}", "train": {"seed": seed, "optimizer": "sgd"}})


def _cli(argv, capsys):
    from trendcli.cli import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    return exc.value.code, out, err


@needs_fmnist
def test_cli_matrix_writes_json_csv_png_and_rerun_is_a_cache_hit(tmp_path, fake_attack, capsys):
    for seed in range(3):
        _saved_smallcnn(tmp_path / "zoo" / f"m{seed}", seed)
    argv = ["matrix", "--models-dir", str(tmp_path / "zoo"), "--attack", "fgsm", "--eps", "8/255", "--limit", "32",
            "--device", "cpu", "--store", str(tmp_path / "adv"), "--out", str(tmp_path / "mx" / "toy"), "--group-by", "optimizer"]
    code, out, err = _cli(argv, capsys)
    assert code == 0, err
    for ext in ("json", "csv", "png", "groups.csv", "groups.png"):
        assert (tmp_path / "mx" / f"toy.{ext}").is_file()
    data = json.loads((tmp_path / "mx" / "toy.json").read_text())
    assert data["attack"]["params"] == {"eps": 8 / 255} and data["groups"]["fields"] == ["optimizer"]
    fake_attack.calls.clear()
    code, out, err = _cli(argv + ["--json"], capsys)
    assert code == 0 and json.loads(out)["run"]["computed_pairs"] == 0 and fake_attack.calls == []


def test_cli_matrix_refuses_models_of_different_datasets(tmp_path, capsys):
    _saved_smallcnn(tmp_path / "a", 0)
    _saved_smallcnn(tmp_path / "b", 0, dataset="cifar10", in_channels=3, image_size=32)
    code, _, err = _cli(["matrix", "--model", str(tmp_path / "a"), "--model", str(tmp_path / "b"), "--device", "cpu",
                         "--out", str(tmp_path / "never")], capsys)
    assert code == 1 and err.startswith("error: ") and err.count("\n") == 1
    assert "cifar10" in err and "one dataset" in err


@needs_fmnist
def test_run_matrix_extends_its_own_file_unless_told_not_to(tmp_path, fake_attack):
    from trendcli.errors import UsageError
    from trendcli.transfer.matrix import run_matrix
    from trendcli.transfer.outputs import matrix_paths

    models = [template_model(s) for s in (0, 1)]
    kw = dict(limit=32, batch_size=32, device="cpu", store=tmp_path / "adv")
    first = run_matrix(models, tmp_path / "mx" / "toy.json", "fgsm", {"eps": 0.1}, **kw)
    assert first.files == matrix_paths(tmp_path / "mx" / "toy") and first.matrix.computed_pairs == 4
    assert all(p.is_file() for p in first.files.values())
    fake_attack.calls.clear()
    again = run_matrix(models, tmp_path / "mx" / "toy", "fgsm", {"eps": 0.1}, **kw)
    assert again.matrix.cached and fake_attack.calls == []  # every pair from toy.json
    fresh = run_matrix(models, tmp_path / "mx" / "toy", "fgsm", {"eps": 0.1}, reuse=False, **kw)
    assert fresh.matrix.computed_pairs == 4 and [c["cached"] for c in fake_attack.calls] == [True, True]
    np.testing.assert_array_equal(fresh.matrix.n_t, first.matrix.n_t)
    with pytest.raises(UsageError, match="two or more models"):
        run_matrix(models[:1], tmp_path / "one", "fgsm", {"eps": 0.1}, **kw)
