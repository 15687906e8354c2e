"""The worst-case protocol: per-image logic by hand, the claim, config errors, and a tiny ensemble end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import needs_fmnist
from trendcli.ensemble.evaluation import EvalConfig
from trendcli.ensemble.worst_case import (
    WorstCaseConfig,
    claim_survival,
    strongest_outside_source,
    worst_case_claim,
    worst_case_outcomes,
)
from trendcli.errors import UsageError


def test_robust_is_right_clean_and_after_every_attack():
    # 5 images; clean right on 0-3; a fools 1, b fools 1 and 2, c fools nothing
    clean = [1, 1, 1, 1, 0]
    out = worst_case_outcomes({"a": [1, 0, 1, 1, 0], "b": [1, 0, 0, 1, 0], "c": [1, 1, 1, 1, 0]}, clean)
    # survivors: images 0 and 3 -> 2 of 5
    assert out["robust"]["k"] == 2 and out["robust"]["n"] == 5 and out["robust"]["rate"] == pytest.approx(0.4)
    assert out["per_image"] == "10010"
    assert out["strongest"] == "b"  # b: 2 of 5 right, the lowest
    # image 2 is turned wrong by b alone; image 1 by a and b (not "only")
    assert out["attacks"]["b"]["only_fooled"] == 1 and out["attacks"]["a"]["only_fooled"] == 0
    lo, hi = out["robust"]["interval"]
    assert lo < 0.4 < hi


def test_robust_never_exceeds_the_weakest_link():
    rng = np.random.default_rng(0)
    for _ in range(20):
        ok = {f"a{i}": rng.random(50) < 0.7 for i in range(4)}
        out = worst_case_outcomes(ok)
        assert out["robust"]["rate"] <= min(r["rate"] for r in out["attacks"].values())


def test_outcomes_need_equal_lengths():
    with pytest.raises(ValueError, match="one value per image"):
        worst_case_outcomes({"a": [1, 0], "b": [1]})
    with pytest.raises(ValueError, match="at least one"):
        worst_case_outcomes({})


def test_claim_holds_when_the_vote_survives_clearly_more_than_every_member():
    ens = np.array([True] * 40 + [False] * 10)
    member = np.array([True] * 10 + [False] * 40)  # 30 discordant images, all for the vote
    out = worst_case_claim(ens, {"m1": member, "m2": member})
    assert out["verdict"] == "holds" and out["by_member"]["m1"]["p_value"] < 1e-6
    weak = worst_case_claim(ens, {"m1": member, "m2": ens})  # m2 identical to the vote: no evidence
    assert weak["verdict"] == "inconclusive" and weak["deciding_member"] == "m2"


def test_survival_reads_the_standard_verdict_first():
    standard = {"ensemble_beats_members": {"verdict": "holds"}, "ensemble_beats_members_worst_case": {"verdict": "inconclusive"}}
    out = claim_survival(standard, {"verdict": "does not hold"})
    assert out["ensemble_beats_members"]["survives"] is False
    assert out["ensemble_beats_members_worst_case"]["survives"] is None  # nothing held to begin with
    assert claim_survival(standard, {"verdict": "holds"})["ensemble_beats_members"]["survives"] is True


def test_strongest_outside_source_is_the_highest_mean_tm_into_the_members():
    # members a, b; outsiders c (TM 0.2, 0.4 -> 0.3) and d (0.5, None -> 0.5)
    mx = {"names": ["a", "b", "c", "d"],
          "tm": [[None, 0.9, 0, 0], [0.9, None, 0, 0], [0.2, 0.4, None, 0], [0.5, None, 0.1, None]]}
    assert strongest_outside_source(mx, ["a", "b"]) == "d"
    assert strongest_outside_source(mx, ["a", "b", "c", "d"]) is None


@pytest.mark.parametrize("kwargs, message", [
    (dict(square_queries=0), "square_queries (the query budget per image) must be an integer >= 1"),
    (dict(apgd_iter=-1), "apgd_iter must be an integer >= 1"),
    (dict(suite=("rules", "pgd2")), "unknown worst-case suite attack 'pgd2'"),
    (dict(eps=0.3), "worst_case_eps 0.3 is not among the evaluated eps"),
    (dict(large_eps=2.0), "large_eps must lie in"),
])
def test_bad_worst_case_settings_fail_before_any_attack(kwargs, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        EvalConfig(eps=(0.01, 0.02), protocol="worst-case", worst_case=WorstCaseConfig(**kwargs)).validated()


def test_unknown_protocol_names_the_known_ones():
    with pytest.raises(UsageError, match="unknown protocol 'worstcase'; known: standard, worst-case"):
        EvalConfig(protocol="worstcase").validated()


def test_default_eps_is_the_one_nearest_the_papers():
    assert WorstCaseConfig().validated([0.005, 0.02, 0.03]).eps == 0.005  # |0.005-0.01| = |0.02-0.01|: the smaller
    assert WorstCaseConfig().validated([0.05, 0.011]).eps == 0.011


# -- a tiny ensemble end to end (slow) ---------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from trendcli.ensemble.members import Ensemble
    from trendcli.zoo.training import TrainConfig, train

    root = tmp_path_factory.mktemp("worst")
    dirs = []
    for i, iq in enumerate(("fp", "q2")):
        train(TrainConfig(arch="smallcnn", input_quant=iq, epochs=1, limit_train=500, seed=i, device="cpu"), root / iq)
        dirs.append(root / iq)
    train(TrainConfig(arch="smallcnn", input_quant="fp", epochs=1, limit_train=500, seed=5, device="cpu"), root / "outside")
    return root, Ensemble.from_dirs(dirs, tie_break="first").save(root / "ens.json")


TINY = dict(attacks=("agd", "dag"), eps=(0.05, 0.1), steps=4, limit=24, device="cpu", sizes=False, domination=False,
            protocol="worst-case")
TINY_WC = WorstCaseConfig(eps=0.05, apgd_iter=4, apgd_targets=2, square_queries=20, masking_images=12)


@pytest.mark.slow
@needs_fmnist
def test_worst_case_on_a_tiny_ensemble(tiny):
    from trendcli.adversarial.store import AdvStore
    from trendcli.ensemble.evaluation import evaluate

    root, ens = tiny
    cfg = EvalConfig(**TINY, transfer_from=str(root / "outside"), store=str(root / "adv"), worst_case=TINY_WC)
    evaluate(ens, cfg, root / "out")
    data = json.loads((root / "out" / "evaluation.json").read_text())
    w = data["worst_case"]
    assert w["n_images"] == 24 and w["eps"] == 0.05 and not w["not_run"]
    for target in [w["ensemble"], *w["members"].values()]:
        rates = [r["rate"] for r in target["attacks"].values()]
        assert target["robust"]["rate"] <= min(rates) and target["robust"]["n"] == 24
    assert set(w["ensemble"]["attacks"]) >= {"agd", "dag", "apgd", "apgd_t", "square"}
    assert any(a.startswith("transfer") for a in w["ensemble"]["attacks"])
    assert set(w["members"][next(iter(w["members"]))]["attacks"]) >= {"pgd", "apgd", "apgd_t", "square"}
    assert w["claim"]["verdict"] in ("holds", "does not hold", "inconclusive")
    assert set(w["claims_survival"]) == {"ensemble_beats_members", "ensemble_beats_members_worst_case"}
    # the robust accuracy under the worst case is at most the A-GD-only number on the same images
    agd = next(s for s in data["sets"] if s["kind"] == "ensemble" and s["attack"] == "agd" and s["eps"] == 0.05)
    assert w["ensemble"]["robust"]["rate"] <= agd["ensemble_accuracy"]
    # every suite set is in the store; APGD's loss curve is kept with its set
    store = AdvStore(root / "adv")
    apgd = next(s for s in w["ensemble"]["sets"] if s["attack"] == "apgd")
    curves = store.get(apgd["key"]).loss_curves
    assert curves is not None and curves.shape[1] == TINY_WC.apgd_iter + 1
    assert len(apgd["loss_curve"]) == TINY_WC.apgd_iter + 1
    flags = {f["flag"] for f in data["masking"]["ensemble"]}
    assert flags == {"gradient_free_stronger", "transfer_stronger", "flat_loss", "large_eps_short", "not_monotone_eps",
                     "not_monotone_steps"}
    assert all(f["fired"] in (True, False) for f in data["masking"]["ensemble"])
    # a second run is served from the store
    again = evaluate(ens, cfg, root / "again").to_dict()
    assert all(s["cached"] for s in again["worst_case"]["ensemble"]["sets"])
    assert again["worst_case"]["ensemble"]["robust"] == w["ensemble"]["robust"]


@pytest.mark.parametrize("args, message", [
    (["--protocol", "nope"], "error: unknown protocol 'nope'; known: standard, worst-case"),
    (["--protocol", "worst-case", "--square-queries", "0"],
     "error: square_queries (the query budget per image) must be an integer >= 1, got 0"),
])
def test_bad_protocol_input_is_one_clear_error_line(tmp_path, capsys, args, message):
    from trendcli.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["evaluate", "--ensemble", str(tmp_path / "none.json"), "--eps", "0.01", *args])
    assert exit_.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err == message


@pytest.mark.slow
@needs_fmnist
def test_protocol_worst_case_through_the_cli(tiny, capsys):
    from trendcli.cli import main

    root, ens = tiny
    with pytest.raises(SystemExit) as exit_:
        main(["evaluate", "--ensemble", str(ens), "--attack", "agd,dag", "--eps", "0.05,0.1", "--steps", "4", "--limit", "24",
              "--device", "cpu", "--store", str(root / "adv"), "--out", str(root / "cli"), "--no-sizes", "--no-domination",
              "--transfer-from", str(root / "outside"), "--tie-break", "first", "--protocol", "worst-case",
              "--worst-case-eps", "0.05", "--apgd-iter", "4", "--apgd-targets", "2", "--square-queries", "20",
              "--masking-images", "12"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "worst case at eps 0.05 on 24 images" in out and "gradient-masking flags" in out and "robust" in out
    data = json.loads((root / "cli" / "evaluation.json").read_text())
    assert data["settings"]["protocol"] == "worst-case" and data["worst_case"]["settings"]["square"]["n_queries"] == 20
