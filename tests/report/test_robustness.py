"""The report's adaptive-attack section: worst-case table, masking flags, attack families side by side."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trendcli.ensemble.worst_case import worst_case_outcomes
from trendcli.report.robustness import attack_family_rows, section_html, worst_case_rows


@dataclass
class View:
    name: str
    data: dict[str, Any]
    path: Path = Path("x.json")
    pngs: list = field(default_factory=list)


@dataclass
class FakeRun:
    evaluations: list = field(default_factory=list)
    matrices: list = field(default_factory=list)


def matrix(name: str, method: str, n_g: list, n_t: list) -> View:
    tm = [[None if g == 0 else t / g for g, t in zip(rg, rt)] for rg, rt in zip(n_g, n_t)]
    return View(name, {"names": ["a", "b"], "attack": {"method": method, "params": {"eps": 0.03}}, "n_g": n_g,
                       "n_t": n_t, "tm": tm, "tm_interval": [[[0.0, 1.0]] * 2] * 2})


def test_attack_families_pool_the_off_diagonal_pairs():
    # pgd: a->b 10 of 40, b->a 30 of 60 -> mean TM (0.25 + 0.5) / 2 = 0.375, pooled 40 / 100 = 0.4
    pgd = matrix("pgd", "pgd", [[50, 40], [60, 50]], [[50, 10], [30, 50]])
    mi = matrix("mi", "mifgsm", [[50, 50], [50, 50]], [[50, 40], [45, 50]])
    summary, head, rows = attack_family_rows([pgd, mi])
    assert summary[0][2] == "0.375" and summary[0][3].startswith("0.400") and summary[0][4] == "40 / 100"
    assert summary[1][4] == "85 / 100"
    assert head == ["source -> target", "TM pgd [95 %]", "TM mi [95 %]"]
    assert [r[0] for r in rows] == ["a -> b", "b -> a"] and "(10/40)" in rows[0][1]
    other = View("other", {**pgd.data, "names": ["a", "c"]})
    assert attack_family_rows([pgd, other]) is None


def worst() -> dict[str, Any]:
    ens = worst_case_outcomes({"agd": [1, 1, 0], "apgd": [1, 0, 0]})
    mem = worst_case_outcomes({"pgd": [1, 0, 0], "square": [0, 0, 0]})
    return {"eps": 0.01, "n_images": 3, "ensemble": {**ens, "sets": []}, "members": {"m1": {**mem, "sets": []}},
            "claim": {"claim": "c", "verdict": "inconclusive", "test": "t", "this_run": "r"},
            "claims_survival": {"ensemble_beats_members": {"standard": "holds", "worst_case": "inconclusive",
                                                           "survives": False}}}


def test_worst_case_rows_put_pgd_type_attacks_first_and_robust_last():
    head, rows = worst_case_rows(worst())
    assert head == ["target", "agd", "pgd", "apgd", "square", "robust accuracy [95 %]", "n", "strongest"]
    assert rows[0][0] == "ensemble (vote)" and rows[0][2] == "-" and rows[0][5].startswith("0.3333")
    assert rows[1][1] == "-" and rows[1][5].startswith("0.0000") and rows[1][7] == "square"


def test_section_shows_worst_case_flags_and_survival():
    flag = {"flag": "flat_loss", "check": "APGD's loss curve flat from the start", "fired": True, "text": "flat"}
    ev = View("trend3", {"worst_case": worst(), "masking": {"ensemble": [flag], "members": {}}})
    html = section_html(FakeRun([ev], []))
    assert "worst case at eps 0.01 on 3 images" in html and "FIRED" in html and ">no<" in html
    assert "No evaluation ran" in section_html(FakeRun([View("e", {})], []))
