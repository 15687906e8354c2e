"""The MI-FGSM family's options (DI, TI, momentum) on `trend matrix`: resolved, and refused on attacks without them."""

from __future__ import annotations

import pytest

from trendcli.cli import main
from trendcli.cli.options import DI_PROB, TI_KERNEL, transfer_params
from trendcli.errors import UsageError


def test_di_and_ti_stand_for_the_papers_settings():
    assert transfer_params("mifgsm", di=True, ti=True) == {"diversity_prob": DI_PROB, "ti_kernel": TI_KERNEL}
    assert transfer_params("mifgsm", diversity_prob=0.3, ti_kernel=5, decay=0.5) == {
        "decay": 0.5, "diversity_prob": 0.3, "ti_kernel": 5}
    assert transfer_params("pgd") == {}


def test_di_twice_is_refused():
    with pytest.raises(UsageError, match="give --di or --diversity-prob, not both"):
        transfer_params("mifgsm", di=True, diversity_prob=0.5)


def test_di_on_an_attack_without_it_is_one_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["matrix", "--attack", "pgd", "--di", "--model", str(tmp_path / "a"), "--model", str(tmp_path / "b"),
              "--out", str(tmp_path / "m")])
    assert exit_.value.code == 1
    assert capsys.readouterr().err.strip() == (
        "error: --diversity-prob / --di needs an attack with diversity_prob, e.g. mifgsm; 'pgd' has none")
