"""Rectangular matrices into a black-box ONNX target, and the transfer-risk audit built on them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from trendcli.adversarial.store import AdvSet
from trendcli.data import load_split
from trendcli.errors import UsageError
from trendcli.stats import decode_bits, wilson_interval
from trendcli.transfer.audit import run_audit
from trendcli.transfer.matrix import compute_matrix
from trendcli.zoo.blackbox import open_session, run_session
from trendcli.zoo.files import load_model

from ..byo import MEAN, STD, byo_package, import_black_box, import_white_box
from ..conftest import needs_fmnist

pytestmark = [needs_fmnist, pytest.mark.slow]

PGD = {"eps": 0.1, "alpha": 0.025, "steps": 5}
LIMIT = 96


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """Two white-box surrogates (factory imports) and a black-box ONNX target, all trained briefly."""
    root = tmp_path_factory.mktemp("audit")
    with byo_package(root):
        surrogates = root / "surrogates"
        for seed, hidden in ((1, 32), (2, 48)):
            import_white_box(root, surrogates / f"s{seed}", seed, hidden)
        target, onnx_path = import_black_box(root, root / "deployed", 3, 64)
        yield {"root": root, "surrogates": surrogates, "target": target, "onnx": onnx_path}


def _matrix(zoo, store):
    sources = [zoo["surrogates"] / "s1", zoo["surrogates"] / "s2"]
    return compute_matrix(sources, "pgd", PGD, targets=[zoo["target"]], limit=LIMIT, batch_size=64,
                          device="cpu", store=store)


def test_a_matrix_entry_into_the_black_box_target_equals_an_onnxruntime_count(zoo, tmp_path):
    mx = _matrix(zoo, tmp_path / "adv")
    assert mx.source_names == ["s1", "s2"] and mx.target_names == ["deployed"]
    t = mx.index("deployed")
    session = open_session(zoo["onnx"])
    test, _ = load_split("fashion_mnist", "test")
    for name in ("s1", "s2"):
        s = mx.index(name)
        source = load_model(zoo["surrogates"] / name)
        path = next(src["store_path"] for src in mx.sources if src["name"] == name)
        with AdvSet(path) as advset:
            adv, indices, labels = advset.read_adv(), advset.indices, advset.labels
        clean, _ = test.batch(torch.as_tensor(np.array(indices)))
        with torch.inference_mode():
            src_clean = source(clean).argmax(1).numpy() == labels
            src_adv = source(torch.from_numpy(adv)).argmax(1).numpy() == labels
        # the target, run here in onnxruntime on z-scored images
        tgt_clean = run_session(session, ((clean.numpy() - MEAN) / STD).astype(np.float32)).argmax(1) == labels
        tgt_adv = run_session(session, ((adv - MEAN) / STD).astype(np.float32)).argmax(1) == labels
        generated = src_clean & tgt_clean & ~src_adv
        assert mx.n_c[s, t] == int((src_clean & tgt_clean).sum())
        assert mx.n_g[s, t] == int(generated.sum()) > 0
        assert mx.n_t[s, t] == int((generated & ~tgt_adv).sum())
    # the target is never a source: its row holds no computed pair
    assert mx.n_g[t].tolist() == [0, 0, 0] and np.isnan(mx.tm[t]).all()


def test_a_gradient_attack_on_a_black_box_source_is_one_clear_error(zoo, tmp_path):
    with pytest.raises(UsageError) as exc:
        compute_matrix([zoo["target"], zoo["surrogates"] / "s1"], "pgd", PGD, limit=LIMIT, device="cpu",
                       store=tmp_path / "adv")
    assert str(exc.value) == (
        "model deployed is black-box (ONNX run in onnxruntime): use a transfer or gradient-free attack (square)"
    )
    assert not list((tmp_path / "adv").glob("*.h5"))


def test_the_audit_risk_per_surrogate_equals_the_matrix_column(zoo, tmp_path):
    store = tmp_path / "adv"
    mx = _matrix(zoo, store)
    run = run_audit(zoo["target"], [zoo["surrogates"]], tmp_path / "audit", "pgd", PGD, limit=LIMIT, batch_size=64,
                    device="cpu", store=store)
    t = mx.index("deployed")
    risks = {r["surrogate"]: r["risk"] for r in run.audit["surrogates"]}
    for name in ("s1", "s2"):
        s = mx.index(name)
        assert (risks[name]["k"], risks[name]["n"]) == (mx.n_t[s, t], mx.n_g[s, t])
        assert risks[name]["interval"] == pytest.approx(list(wilson_interval(int(mx.n_t[s, t]), int(mx.n_g[s, t]))))
    rates = [r["risk"]["rate"] for r in run.audit["surrogates"]]
    assert rates == sorted(rates, reverse=True) and [r["rank"] for r in run.audit["surrogates"]] == [1, 2]
    # the per-image worst case, by hand from the matrix's outcomes
    bits = mx.per_image
    clean_t = decode_bits(bits["clean_ok"]["deployed"])
    g = [decode_bits(bits["clean_ok"][s]) & clean_t & ~decode_bits(bits["adv_ok"][s][s]) for s in ("s1", "s2")]
    tr = [gi & ~decode_bits(bits["adv_ok"][s]["deployed"]) for gi, s in zip(g, ("s1", "s2"))]
    overall = run.audit["overall"]
    assert (overall["worst_case_tm"]["k"], overall["worst_case_tm"]["n"]) == (int((tr[0] | tr[1]).sum()), int((g[0] | g[1]).sum()))
    survive = clean_t & decode_bits(bits["adv_ok"]["s1"]["deployed"]) & decode_bits(bits["adv_ok"]["s2"]["deployed"])
    assert overall["worst_case_accuracy"]["k"] == int(survive.sum()) and overall["worst_case_accuracy"]["n"] == LIMIT
    on_disk = json.loads((tmp_path / "audit.json").read_text())
    assert on_disk["format"] == "trendcli-audit/1" and on_disk["surrogates"] == run.audit["surrogates"]
    page = (tmp_path / "audit.html").read_text()
    assert "Transfer-risk audit of deployed" in page and page.index(">s1<") != page.index(">s2<")
    # the second run reads everything back: no attack, no evaluation
    again = run_audit(zoo["target"], [zoo["surrogates"]], tmp_path / "audit", "pgd", PGD, limit=LIMIT, batch_size=64,
                      device="cpu", store=store)
    assert again.matrix.cached and again.audit["surrogates"] == run.audit["surrogates"]
