"""The verdict rules on constructed per-image outcomes: a clear win, a clear loss, and a
difference within noise, which must come out inconclusive."""

from __future__ import annotations

import numpy as np
import pytest

from trendcli.report.ensemble_findings import agd_vs_dag_finding, ensemble_findings, ensemble_robustness_finding
from trendcli.report.findings import asymmetry_finding, low_bit_input_finding, seed_finding
from trendcli.stats import mcnemar_exact


def outcomes_for(tm: list[list[float]], n: int, seed: int = 0):
    """Per-image outcomes whose TM is ``tm``: every model clean-correct on all n images, every
    source fooling itself on all of them, and s's image i transferring to t on round(tm * n)
    images drawn at random (independently per pair)."""
    tm = np.asarray(tm, dtype=float)
    k = len(tm)
    rng = np.random.default_rng(seed)
    clean = np.ones((k, n), bool)
    adv = np.ones((k, k, n), bool)
    for s in range(k):
        for t in range(k):
            adv[s, t, rng.permutation(n)[: round((1.0 if s == t else tm[s, t]) * n)]] = False
    n_g = np.full((k, k), n)
    measured = np.array([[(~adv[s, t]).sum() / n for t in range(k)] for s in range(k)])
    return measured, n_g, (clean, adv, np.ones((k, k), bool))


SPECS = [{"input_quant": "fp"}, {"input_quant": "fp"}, {"input_quant": "q1"}]


def _low_bit(into_q1: float, elsewhere: float, n: int):
    tm = [[1, elsewhere, into_q1], [elsewhere, 1, into_q1], [elsewhere, elsewhere, 1]]
    measured, _, oc = outcomes_for(tm, n)
    return low_bit_input_finding(["a", "b", "c"], measured, SPECS, outcomes=oc)


def test_low_bit_clear_win_clear_loss_and_noise():
    win = _low_bit(0.1, 0.8, 300)
    assert win.verdict == "holds" and win.result.p_value < 0.05 and win.result.n == 300
    lo, hi = win.result.interval
    assert 0 < lo < win.result.effect < hi
    assert "paired bootstrap" in win.result.test
    assert win.values["column_average_interval"]["c"][0] < win.values["column_average"]["c"]
    assert _low_bit(0.9, 0.3, 300).verdict == "does not hold"
    noise = _low_bit(0.50, 0.52, 100)
    assert noise.verdict == "inconclusive" and noise.result.p_value >= 0.05


def _asym(forward: float, back: float, n: int):
    measured, n_g, oc = outcomes_for([[1, forward], [back, 1]], n)
    return asymmetry_finding(["a", "b"], measured, n_g, outcomes=oc)


def test_asymmetry_exact_test_on_the_shared_images():
    clear = _asym(0.9, 0.3, 200)
    assert clear.verdict == "holds" and "McNemar" in clear.result.test
    pair = clear.values["per_pair"][0]
    b, c = pair["discordant"]
    assert pair["p_value"] == pytest.approx(mcnemar_exact(b, c)) and pair["shared_images"] == 200
    assert clear.result.effect == pytest.approx(abs(pair["difference"]))
    noise = _asym(0.50, 0.52, 100)
    assert noise.verdict == "inconclusive"  # never "does not hold": symmetry is not what the claim denies


def _seed(same: float, other: float, n: int):
    tm = [[1, same, other], [same, 1, other], [other, other, 1]]
    measured, n_g, oc = outcomes_for(tm, n)
    return seed_finding(["a0", "a1", "b0"], measured, ["A", "A", "B"], [0, 1, 0], n_g=n_g, outcomes=oc)


def test_seed_clear_win_clear_loss_and_noise():
    win = _seed(0.9, 0.3, 300)
    assert win.verdict == "holds" and win.values["ddof"] == 0 and win.values["pooled_interval"][0] < 0.9
    assert _seed(0.3, 0.9, 300).verdict == "does not hold"
    assert _seed(0.50, 0.52, 100).verdict == "inconclusive"


def _correct(n: int, wrong: list[int] | range) -> np.ndarray:
    ok = np.ones(n, bool)
    ok[list(wrong)] = False
    return ok


def test_agd_vs_dag_on_the_same_images():
    n = 500
    # the example: success 0.130 vs 0.132, a difference of one image -> inconclusive
    agd = _correct(n, range(0, 65))
    dag = _correct(n, range(30, 96))
    f = agd_vs_dag_finding([0.01], [65 / n], [66 / n], n=n, agd_ok={0.01: agd}, dag_ok={0.01: dag})
    assert f.verdict == "inconclusive"
    # exact McNemar on the discordant images: A-GD alone fools 0..29 (30), D-AG alone 65..95 (31)
    assert f.result.p_value == pytest.approx(mcnemar_exact(30, 31)) and f.result.test.startswith("exact McNemar")
    # a clear win at both small eps, and a clear loss at one of them
    strong, weak = _correct(n, range(0, 300)), _correct(n, range(0, 100))
    win = agd_vs_dag_finding([0.01, 0.02], [0.6, 0.6], [0.2, 0.2], n=n,
                             agd_ok={0.01: strong, 0.02: strong}, dag_ok={0.01: weak, 0.02: weak})
    assert win.verdict == "holds" and win.result.effect == pytest.approx(0.4)
    loss = agd_vs_dag_finding([0.01, 0.02], [0.6, 0.2], [0.2, 0.6], n=n,
                              agd_ok={0.01: strong, 0.02: weak}, dag_ok={0.01: weak, 0.02: strong})
    assert loss.verdict == "does not hold" and loss.values["deciding_eps"] == 0.02


def test_ensemble_against_each_member_on_the_same_images():
    n = 500
    vote = _correct(n, range(0, 65))          # 0.870
    member_noise = _correct(n, range(30, 112))  # 0.836, the example
    member_far = _correct(n, range(0, 400))   # 0.200
    f = ensemble_robustness_finding("agd", [0.01], [0.870], {"q1": [0.836], "fp": [0.2]}, n=n,
                                    ensemble_ok={0.01: vote}, members_ok={"q1": {0.01: member_noise}, "fp": {0.01: member_far}})
    # discordant: the vote alone right on 65..111 (47), the member alone on 0..29 (30)
    assert f.result.p_value == pytest.approx(mcnemar_exact(47, 30)) and mcnemar_exact(47, 30) > 0.05
    assert f.verdict == "inconclusive" and f.values["by_eps"][0]["members"]["fp"]["test"]["verdict"] == "holds"
    clear = ensemble_robustness_finding("agd", [0.01], [0.870], {"fp": [0.2]}, n=n, ensemble_ok={0.01: vote},
                                        members_ok={"fp": {0.01: member_far}})
    assert clear.verdict == "holds"
    behind = ensemble_robustness_finding("agd", [0.01], [0.2], {"fp": [0.87]}, n=n, ensemble_ok={0.01: member_far},
                                         members_ok={"fp": {0.01: vote}})
    assert behind.verdict == "does not hold"


def test_ensemble_findings_take_the_outcomes_of_the_sets():
    n = 200
    vote, member = _correct(n, range(0, 20)), _correct(n, range(0, 150))
    adv = {"agd": {0.01: 0.9}, "dag": {0.01: 0.9}}
    found = ensemble_findings(adv, {"fp": {0.01: 0.25}}, n=n,
                              outcomes={"ensemble": {"agd": {0.01: vote}, "dag": {0.01: vote}},
                                        "member": {"fp": {0.01: member}}})
    by_key = {f.key: f for f in found}
    assert by_key["agd_vs_dag"].verdict == "inconclusive"  # identical outcomes: no discordant image
    assert by_key["ensemble_robustness"].verdict == "holds"
    assert by_key["ensemble_robustness"].result.test.startswith("exact McNemar")


def test_the_findings_rest_on_the_papers_protocol_and_tie_break(tmp_path):
    import inspect
    from pathlib import Path

    from trendcli.ensemble.members import Ensemble
    from trendcli.ensemble.selection import ensemble_from_design, run_design
    from trendcli.study.config import load_study

    assert inspect.signature(Ensemble).parameters["tie_break"].default == "paper"
    assert inspect.signature(Ensemble.from_dirs).parameters["tie_break"].default == "paper"
    assert inspect.signature(run_design).parameters["tie_break"].default == "paper"
    assert inspect.signature(ensemble_from_design).parameters["tie_break"].default == "paper"
    example = Path(__file__).parents[2] / "examples" / "fashion-mnist.toml"
    study = load_study(example)
    assert {e.tie_break for e in study.ensembles} == {"paper"}
    # an [[ensembles]] table without tie_break gets the paper's
    text = "\n".join(line for line in example.read_text().splitlines() if not line.startswith("tie_break = \"paper\""))
    assert 'tie_break = "paper"' not in text
    (tmp_path / "s.toml").write_text(text)
    assert {e.tie_break for e in load_study(tmp_path / "s.toml", run_dir=tmp_path / "run").ensembles} == {"paper"}
    # the demo's basis matrix is PGD-40 at 8/255, alpha 0.01, random start
    basis = next(m for m in study.matrices if m.name == study.ensembles[0].matrix)
    params = next(a for a in study.attacks if a.name == basis.attack).params
    assert params == {"eps": pytest.approx(8 / 255), "alpha": 0.01, "steps": 40, "random_start": True}
    assert any(next(a for a in study.attacks if a.name == m.attack).params["eps"] == 0.1 for m in study.matrices)
    assert 0.01 in study.evaluations[0].eps
