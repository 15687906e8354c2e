"""Attack-strength sweeps: the eps grid, the fit of eqs. 8-9, RMSE, the orchestration."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from ..conftest import needs_fmnist
from trendcli.errors import UsageError
from trendcli.transfer.sweep import SweepResult, eps_grid, fit_strength, initial_guess, rmse, strength_curve, sweep


def test_eps_grid_is_the_authors():
    # eps_k = k * 0.1 / (n + 1): n = 4 -> 0.02, 0.04, 0.06, 0.08 ; n = 20 -> step 0.1/21
    np.testing.assert_allclose(eps_grid(4), [0.02, 0.04, 0.06, 0.08])
    dense = eps_grid(20)
    assert len(dense) == 20 and dense[0] == pytest.approx(0.1 / 21) and dense[-1] == pytest.approx(2 / 21)
    with pytest.raises(UsageError):
        eps_grid(0)


def test_strength_curve_by_hand():
    # a = 100, b = 50, eps = 0.02: 100 * (1 - e^-1) = 63.212
    assert strength_curve(0.02, 100, 50) == pytest.approx(100 * (1 - math.exp(-1)))


@pytest.mark.parametrize("a,b", [(3000.0, 40.0), (450.0, 120.0), (8166.0, 15.0), (12.0, 300.0)])
def test_fit_recovers_a_and_b_from_exact_curves_on_four_points(a, b):
    eps = eps_grid(4)
    f = fit_strength(eps, strength_curve(eps, a, b))
    assert f.converged
    assert f.a == pytest.approx(a, rel=1e-5) and f.b == pytest.approx(b, rel=1e-5)
    assert f.rmse_fit < 1e-6 * a


def test_initial_guess_scales_with_the_data():
    # 500-image scale counts: the guess lands near the truth, unlike the authors' a = 1e4
    eps = eps_grid(4)
    a0, b0 = initial_guess(eps, strength_curve(eps, 300.0, 60.0))
    assert 200 < a0 < 450 and 30 < b0 < 120


def test_fit_of_all_zero_counts_is_zero():
    f = fit_strength(eps_grid(4), np.zeros(4))
    assert f.a == 0 and np.all(f(eps_grid(20)) == 0)
    with pytest.raises(UsageError, match="at least 2 points"):
        fit_strength([0.02], [1.0])


def test_rmse_by_hand():
    # errors 0, 0, 2 -> sqrt(4 / 3); NaN points are skipped
    assert rmse([1, 2, 3, np.nan], [1, 2, 5, 7]) == pytest.approx(math.sqrt(4 / 3))


def _synthetic(noise: float = 0.0) -> SweepResult:
    dense, fit = eps_grid(20), eps_grid(4)
    rng = np.random.default_rng(0)
    self_curve = lambda e: strength_curve(e, 400, 80)  # noqa: E731
    t_curves = [lambda e: strength_curve(e, 300, 50), lambda e: strength_curve(e, 100, 30)]
    jitter = lambda x: np.round(x + noise * rng.standard_normal(x.shape))  # noqa: E731
    n_t = np.stack([jitter(c(dense)) for c in t_curves])
    return SweepResult(
        source="fp", targets=["q1", "q2"], eps=dense, n_self=jitter(self_curve(dense)),
        n_c=np.full((2, 20), 450), n_g=np.tile(jitter(self_curve(dense)), (2, 1)), n_t=n_t,
        fit_eps=fit, fit_self=np.round(self_curve(fit)), fit_n_t=np.stack([np.round(c(fit)) for c in t_curves]),
    )


def test_fit_report_rmse_against_dense_sweep_and_plot(tmp_path):
    exact = _synthetic().fit_report()
    # counts rounded to integers only: RMSE below one image, TM error tiny
    assert exact["self"]["rmse"] < 1.0
    assert exact["targets"]["q1"]["a"] == pytest.approx(300, rel=0.02)
    assert exact["rmse_tm_mean"] < 0.01
    noisy = _synthetic(noise=10.0)
    report = noisy.fit_report()
    assert 5 < report["targets"]["q1"]["rmse"] < 20  # noise of std 10 shows up in the RMSE
    path = noisy.plot(tmp_path / "sweep.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = noisy.to_dict()
    assert data["fit"]["eps"] == pytest.approx([0.02, 0.04, 0.06, 0.08])
    assert len(data["tm_eq10"][0]) == 20
    from trendcli.stats import wilson_interval

    k, n = int(noisy.n_t[0, 5]), int(noisy.n_g[0, 5])
    assert 0 <= k <= n and data["tm_interval"][0][5] == pytest.approx(list(wilson_interval(k, n)))


@needs_fmnist
def test_sweep_counts_grow_with_eps_and_rerun_is_cached(tmp_path, monkeypatch):
    import trendcli.transfer.streaming as streaming_mod
    from .test_matrix import FakeAttack, template_model

    fake = FakeAttack()
    monkeypatch.setattr(streaming_mod, "run_attack", fake)
    src, tgt = template_model(0), template_model(1)
    kw = dict(eps=[0.02, 0.05, 0.1, 0.2], fit=2, limit=64, batch_size=64, device="cpu", store=tmp_path)
    res = sweep(src, [tgt], "fgsm", **kw)
    assert res.eps.tolist() == [0.02, 0.05, 0.1, 0.2]
    # fit grid for n = 2: 0.1/3, 0.2/3 -> two more attacks
    assert len(fake.calls) == 6 and not any(c["cached"] for c in fake.calls)
    assert res.n_self[-1] >= res.n_self[0] and res.n_self[-1] > 0
    assert (res.n_t <= res.n_g).all()
    assert "rmse" in res.fit_report()["targets"][res.targets[0]]
    fake.calls.clear()
    again = sweep(src, [tgt], "fgsm", **kw)
    assert all(c["cached"] for c in fake.calls)
    np.testing.assert_array_equal(again.n_t, res.n_t)
    with pytest.raises(UsageError, match="at least one target"):
        sweep(src, [], "fgsm", **kw)


@pytest.mark.slow
@needs_fmnist
def test_sweep_end_to_end_real_attack(tmp_path):
    pytest.importorskip("trendcli.adversarial.generate")
    from trendcli.zoo.training import TrainConfig, train

    for name in ("a", "b"):
        train(TrainConfig(arch="smallcnn", seed=0 if name == "a" else 1, epochs=1, limit_train=2000, device="cpu"),
              tmp_path / name)
    res = sweep(tmp_path / "a", [tmp_path / "b"], "pgd", {"alpha": 0.01, "steps": 5}, points=4, fit=4,
                limit=64, batch_size=64, device="cpu", store=tmp_path / "adv")
    # points = 4 and fit = 4 share one grid: 4 attacks, the fit reuses the dense measurements
    assert res.fit_eps.tolist() == res.eps.tolist()
    assert res.n_self[-1] >= res.n_self[0]
    assert math.isfinite(res.fit_report()["self"]["rmse"])


@needs_fmnist
def test_cli_sweep_with_fit_prints_rmse_and_writes_png(tmp_path, monkeypatch, capsys):
    import trendcli.transfer.streaming as streaming_mod
    from .test_matrix import FakeAttack, _cli, _saved_smallcnn

    monkeypatch.setattr(streaming_mod, "run_attack", FakeAttack())
    a, b = _saved_smallcnn(tmp_path / "a", 0), _saved_smallcnn(tmp_path / "b", 1)
    code, out, err = _cli(["sweep", "--source", str(a), "--target", str(b), "--attack", "fgsm", "--eps", "0.05,0.1,0.2",
                           "--fit", "3", "--limit", "32", "--device", "cpu", "--store", str(tmp_path / "adv"),
                           "--out", str(tmp_path / "sw")], capsys)
    assert code == 0, err
    assert "RMSE" in out and (tmp_path / "sw.png").read_bytes()[:4] == b"\x89PNG"
    data = json.loads((tmp_path / "sw.json").read_text())
    assert data["eps"] == [0.05, 0.1, 0.2] and "rmse" in data["fit"]["self"]
