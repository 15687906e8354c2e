"""`trend report`: the HTML page, findings.md/json, README splicing, one-line errors, Chromium render."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from trendcli.cli import main
from trendcli.errors import OnnxExportError, UsageError
from trendcli.report.html import FINDINGS_END, FINDINGS_START, RunFileError, load_run, splice_findings, write_report

# -- a synthetic run directory ----------------------------------------------------------------------
# Four models: fp (seeds 0 and 1, one config), q1 and ht. TM rows = source, columns = target,
# N_g = 100 everywhere, so N_t = 100 * TM.
NAMES = ["fp-s0", "fp-s1", "q1-s0", "ht-s0"]
IDS = ["smallcnn.fp-w32-a32.sgd.s0", "smallcnn.fp-w32-a32.sgd.s1", "smallcnn.q1-w32-a32.sgd.s0", "smallcnn.ht-w32-a32.sgd.s0"]
QUANT = {"fp-s0": ("fp", 0), "fp-s1": ("fp", 1), "q1-s0": ("q1", 0), "ht-s0": ("ht", 0)}
TM = [
    [1.0, 0.9, 0.2, 0.1],
    [0.8, 1.0, 0.3, 0.2],
    [0.6, 0.5, 1.0, 0.3],
    [0.3, 0.2, 0.1, 1.0],
]
MEMBERS = [IDS[2], IDS[3], IDS[0]]  # the ensemble: q1, ht, fp
EPS = [0.01, 0.02]
ENS_ADV = {"agd": [0.60, 0.40], "dag": [0.70, 0.50]}
MEMBER_PGD = {IDS[2]: [0.45, 0.30], IDS[3]: [0.50, 0.35], IDS[0]: [0.05, 0.01]}
CLEAN = {"ensemble": 0.85, "members": {IDS[2]: 0.80, IDS[3]: 0.82, IDS[0]: 0.90}}


def _spec(input_quant: str) -> dict:
    return {"arch": "smallcnn", "dataset": "fashion_mnist", "in_channels": 1, "image_size": 28, "num_classes": 10,
            "mean": [0.286], "std": [0.353], "width": 1.0, "input_quant": input_quant, "per_image": False,
            "weight_bits": 32, "act_bits": 32}


def _train(seed: int) -> dict:
    return {"arch": "smallcnn", "optimizer": "sgd", "lr": 0.01, "epochs": 1, "batch_size": 128, "seed": seed,
            "split_seed": 0, "device": "cpu", "data_dir": None}


def _png(path: Path, value: float) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 1.5), dpi=50)
    ax.imshow(np.full((3, 3), value), vmin=0, vmax=1, cmap="Blues")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def _onnx(path: Path, members: list[str]) -> None:
    """A tiny ONNX file carrying a trendcli ensemble's metadata (graph: Identity ops)."""
    import onnx
    from onnx import TensorProto, helper

    from trendcli.deploy.export import FORMAT, METADATA_KEY

    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 1, 28, 28])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", 1, 28, 28]) for n in ("label", "votes", "member_labels")]
    nodes = [helper.make_node("Identity", ["images"], [o.name]) for o in outs]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], outs))
    meta = {"format": FORMAT, "members": [{"id": m} for m in members], "tie_break": "first", "opset": 17,
            "dataset": "fashion_mnist"}
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


def write_infer(run: Path, accuracy: float) -> None:
    """exports/trend3.infer.json as trendcli.deploy.runtime writes it: ``accuracy`` on 100 images."""
    from trendcli.deploy.runtime import DatasetRun

    labels = np.zeros(100, dtype=np.int64)
    pred = np.where(np.arange(100) < round(accuracy * 100), 0, 1)
    infer = DatasetRun("fashion_mnist", "test", "CPUExecutionProvider", 64, MEMBERS, labels, pred,
                       np.stack([pred, pred, np.zeros(100, dtype=np.int64)], 1), np.array([0.001, 0.002, 0.003, 0.004]))
    (run / "exports" / "trend3.infer.json").write_text(json.dumps(infer.summary()))


def build_run(root: Path, *, matrices: bool = True, ensembles: bool = True, evaluations: bool = True,
              exports: bool = True, onnx_accuracy: float = 0.85) -> Path:
    """A run directory with every section (or some left out), in the schemas the stages write."""
    run = root / "runs" / "demo"
    study_file = root / "demo.toml"
    study_file.write_text('[study]\nname = "demo"\n[zoo]\ninput_quant = ["fp", "q1", "ht"]\n')
    (run / "models").mkdir(parents=True)
    (run / "study.json").write_text(json.dumps({
        "study": str(study_file), "name": "demo", "dataset": "fashion_mnist",
        "models": [{"name": n, "dir": f"models/{n}"} for n in NAMES],
        "tasks": [{"id": "design:trend3", "stage": "design", "args": {
            "matrix": "matrices/pgd.json", "size": 3, "require": ["models/ht-s0"], "candidates": [], "tie_break": "first",
            "out": "ensembles/trend3.json"}}]}))
    for name, mid in zip(NAMES, IDS):
        q, seed = QUANT[name]
        card = {"format": "trendcli-model/1", "id": mid, "spec": _spec(q), "train": _train(seed),
                "accuracy": {"val": 0.8 + seed / 100, "test": 0.7766}, "weights_sha256": f"{name:0<64}"[:64],
                "seconds": 12.5, "versions": {"python": "3.11", "torch": "2.14.1"}}
        (run / "models" / name).mkdir()
        (run / "models" / name / "model.json").write_text(json.dumps(card))
    (run / "tasks").mkdir()
    (run / "tasks" / "train-fp-s0.json").write_text(json.dumps({"id": "train:fp-s0", "key": "k", "seconds": 3.0}))
    (run / "last_run.json").write_text(json.dumps({"executor": "local", "tasks": []}))
    if matrices:
        from trendcli.transfer.matrix import TransferMatrix

        n_g = np.full((4, 4), 100)
        mx = TransferMatrix(
            names=IDS, model_dirs=[f"runs/demo/models/{n}" for n in NAMES], n_c=n_g, n_g=n_g,
            n_t=(np.array(TM) * 100).round().astype(int), clean_accuracy={i: 0.8 for i in IDS},
            models=[{"name": i, "spec": _spec(QUANT[n][0]), "train": _train(QUANT[n][1])} for n, i in zip(NAMES, IDS)],
            attack={"method": "pgd", "params": {"eps": 0.1}, "split": "test", "n_images": 100},
        )
        mx.save(run / "matrices" / "pgd.json")
        mx.plot(run / "matrices" / "pgd.png")
    if ensembles:
        from trendcli.ensemble.members import Ensemble, Member

        members = [Member(f"runs/demo/models/{NAMES[IDS.index(m)]}", m, "ab" * 32) for m in MEMBERS]
        design = {"method": "trend", "matrix": "runs/demo/matrices/pgd.json", "score": 0.2833, "undefined_pairs": 0,
                  "search": "exhaustive", "rank": 0, "nan_policy": "worst"}
        Ensemble(members, "first", 0, None, design).save(run / "ensembles" / "trend3.json")
    if evaluations:
        from trendcli.ensemble.evaluation import Evaluation, SetResult, write_outputs

        sets = [SetResult("ensemble", MEMBERS, attack, e, f"k{attack}{e}", True, 1.0, accs[i], accs[i], {})
                for attack, accs in ENS_ADV.items() for i, e in enumerate(EPS)]
        sets += [SetResult("member", [m], "pgd", e, f"k{m}{e}", True, 1.0, accs[i], 0.5, {})
                 for m, accs in MEMBER_PGD.items() for i, e in enumerate(EPS)]
        evaluation = Evaluation(
            ensemble={"path": "runs/demo/ensembles/trend3.json", "members": MEMBERS, "tie_break": "first", "seed": 0,
                      "per_image": True, "model_dirs": [f"runs/demo/models/{NAMES[IDS.index(m)]}" for m in MEMBERS]},
            settings={"eps": EPS, "alpha": 0.01, "steps": 40, "split": "test", "limit": 100},
            n_images=100, clean=CLEAN, sets=sets,
        )
        write_outputs(evaluation, run / "evaluations" / "trend3")
    if exports:
        _onnx(run / "exports" / "trend3.onnx", MEMBERS)
        write_infer(run, onnx_accuracy)
    return run


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """One full synthetic run (plots take a second), copied into each test that changes it."""
    return build_run(tmp_path_factory.mktemp("template"))


@pytest.fixture
def run_dir(template, tmp_path) -> Path:
    return Path(shutil.copytree(template, tmp_path / "runs" / "demo"))


def _cli(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    return exc.value.code, out, err


# -- the page and the findings ----------------------------------------------------------------------


def test_report_has_every_section_and_the_numbers(run_dir, tmp_path):
    run = run_dir
    report = write_report(run, tmp_path / "out")
    page = report.index.read_text()
    for section in ("summary", "models", "transferability", "ensembles", "robustness", "export", "findings"):
        assert f'<section id="{section}">' in page
    assert page.count("data:image/png;base64,") == 3  # the heatmap and the two evaluation plots, embedded
    assert "fp-s1" in page and "Q1-W32-A32" in page and "0.7766" in page  # models table
    # row averages (diagonal left out): fp-s0 (0.9 + 0.2 + 0.1) / 3 = 0.400; q1 column (0.2 + 0.3 + 0.1) / 3 = 0.200
    assert "<td class=num>0.400</td>" in page and "<td class=num>0.200</td>" in page
    assert "<b>0.283</b>" in page  # design score, a mean TM: three decimals like every TM
    # robustness: ensemble 0.60 vs q1 0.45 under agd at 0.01 -> 0.60 / 0.45 = 1.33x; vs fp 0.60 / 0.05 = 12.00x
    # with the Wilson 95 % interval of 45 and 5 of the 100 images
    assert "0.4500 [0.356, 0.548] (1.33x)" in page and "0.0500 [0.022, 0.112] (12.00x)" in page
    # export: 100 images in 1 + 2 + 3 + 4 ms = 10000 images/s; p50 of the batch latencies 2.5 ms, p99 3.97 ms
    assert "<td class=num>10000</td>" in page and "<td class=num>2.50</td>" in page and "<td class=num>3.97</td>" in page
    assert "demo.toml" in page and "[zoo]" in page  # footer: the study file
    assert "trend report" in page
    assert report.index.stat().st_mode & 0o777 == 0o644  # readable when served or shared


def test_findings_on_the_synthetic_run(template, tmp_path):
    report = write_report(template, tmp_path / "out")
    by_key = {f.key: f for f in report.findings}
    assert [f.key for f in report.findings] == [
        "low_bit_input", "asymmetry", "seed", "agd_vs_dag", "ensemble_robustness", "ensemble_robustness_worst_case",
        "ensemble_robustness_black_box", "export_accuracy"]
    # pairs with q1/ht: 0.2+0.1 + 0.3+0.2 + 0.6+0.5+0.3 + 0.3+0.2+0.1 = 2.8 over 10 -> 0.28 < among FP (0.9+0.8)/2 = 0.85
    assert by_key["low_bit_input"].holds is True
    assert by_key["low_bit_input"].values["mean_tm_pairs_with_low_bit"] == pytest.approx(0.28)
    # most asymmetric pair: q1 -> fp-s0 0.6 vs back 0.2
    assert by_key["asymmetry"].values["max_pair"] == [IDS[2], IDS[0]] and by_key["asymmetry"].holds is True
    assert by_key["seed"].values["mean_tm_same_config"] == pytest.approx(0.85) and by_key["seed"].holds is True
    # success A-GD 1 - 0.60 = 0.40 vs D-AG 1 - 0.70 = 0.30 at eps 0.01 -> 1.33x; at 0.02: 0.60 vs 0.50
    assert by_key["agd_vs_dag"].values["ratio"][0] == pytest.approx(0.4 / 0.3) and by_key["agd_vs_dag"].holds is True
    assert by_key["ensemble_robustness"].holds is True
    assert by_key["ensemble_robustness_worst_case"].holds is True  # agd is the strongest at both eps
    assert by_key["ensemble_robustness_black_box"].verdict == "not measured"  # no transfer source
    assert by_key["export_accuracy"].holds is True
    md = report.findings_md.read_text()
    assert md.count("\n| ") == 2 + 8 and "| claim | paper | this run | verdict | test | p | effect [95 % interval] | n |" in md and "1.56x" in md
    data = json.loads(report.findings_json.read_text())
    assert [f["verdict"] for f in data["findings"]] == ["holds"] * 6 + ["not measured", "holds"]
    assert data["findings"][3]["test"] == "point estimate" and data["findings"][3]["n"] == 100


def test_export_that_differs_from_the_evaluation_does_not_hold(run_dir, tmp_path):
    write_infer(run_dir, 0.84)  # 84 vs 85 correct of 100
    report = write_report(run_dir, tmp_path / "out")
    export = next(f for f in report.findings if f.key == "export_accuracy")
    assert export.holds is False and "0.8400" in export.this_run
    assert 'class="nothold"' in report.index.read_text()


def test_absent_sections_are_reported_as_absent(tmp_path):
    run = build_run(tmp_path, matrices=False, ensembles=False, evaluations=False, exports=False)
    report = write_report(run)  # default: RUN/report
    assert report.index == run / "report" / "index.html"
    page = report.index.read_text()
    for text in ("No transferability matrix", "No designed ensemble", "No ensemble evaluation", "No ONNX export"):
        assert text in page
    assert all(f.holds is None for f in report.findings) and "not measured" in page


def test_design_candidates_are_recomputed_with_the_study_settings(run_dir):
    run = load_run(run_dir)
    cands = run.ensembles[0].candidates
    # the study required ht-s0: {fp-s0, q1, ht} TM_sym (0.2+0.6)/2, (0.1+0.3)/2, (0.3+0.1)/2 -> (0.4+0.2+0.2)/3 = 0.267;
    # {fp-s1, q1, ht} (0.3+0.5)/2, (0.2+0.2)/2, 0.2 -> 0.267; {fp-s0, fp-s1, ht} (0.85 + 0.2 + 0.2)/3 = 0.417
    assert [c["score"] for c in cands] == [pytest.approx(0.8 / 3), pytest.approx(0.8 / 3), pytest.approx(1.25 / 3)]
    assert all(IDS[3] in c["members"] for c in cands)
    assert "the study's design settings" in run.ensembles[0].candidates_note
    # without the study's task record: every subset of 3 of the 4 models
    study = json.loads((run_dir / "study.json").read_text())
    (run_dir / "study.json").write_text(json.dumps({**study, "tasks": []}))
    again = load_run(run_dir).ensembles[0]
    assert len(again.candidates) == 4 and "not recorded" in again.candidates_note


def test_evaluate_and_report_agree_on_every_claim(tmp_path):
    # A-GD ahead of D-AG at the smallest eps (success 0.40 vs 0.30 at 0.005) but behind at 0.02 (0.50 vs
    # 0.60): the old report rule (smallest eps) said "holds", the old evaluate rule (every eps < 0.03) not.
    from trendcli.ensemble.evaluation import Evaluation, SetResult, write_outputs

    members = ["fp", "q1"]
    adv = {("agd", 0.005): 0.60, ("agd", 0.02): 0.50, ("dag", 0.005): 0.70, ("dag", 0.02): 0.40}
    pgd = {("fp", 0.005): 0.30, ("fp", 0.02): 0.00, ("q1", 0.005): 0.55, ("q1", 0.02): 0.20}
    sets = [SetResult("ensemble", members, a, e, f"k{a}{e}", True, 1.0, v, v, {}) for (a, e), v in adv.items()]
    sets += [SetResult("member", [m], "pgd", e, f"k{m}{e}", True, 1.0, v, 0.5, {}) for (m, e), v in pgd.items()]
    sets += [SetResult("transfer", ["outside"], "pgd", e, f"kt{e}", True, 1.0, 0.1, 0.8, {"fp": 0.7, "q1": 0.9})
             for e in (0.005, 0.02)]
    ev = Evaluation(ensemble={"path": None, "members": members, "tie_break": "first", "seed": 0, "per_image": True,
                              "model_dirs": []},
                    settings={"eps": [0.005, 0.02]}, n_images=50, clean={"ensemble": 0.9, "members": {"fp": 0.9, "q1": 0.8}},
                    sets=sets)
    run = tmp_path / "run"
    write_outputs(ev, run / "evaluations" / "e")
    claims = json.loads((run / "evaluations" / "e" / "evaluation.json").read_text())["claims"]
    report = write_report(run, tmp_path / "out")
    found = {f["key"]: f for f in json.loads(report.findings_json.read_text())["findings"]}
    from trendcli.ensemble.evaluation import CLAIM_KEYS

    assert set(CLAIM_KEYS) <= set(found)
    for key, claim_key in CLAIM_KEYS.items():
        for field in ("verdict", "holds", "test", "p_value", "effect", "interval", "n", "this_run"):
            assert claims[claim_key][field] == found[key][field], (key, field)
    assert found["agd_vs_dag"]["verdict"] == "does not hold"
    # eps nearest 0.01 is 0.005: agd 0.60 vs fp 0.30, q1 0.55 -> holds; the strongest attack there is agd
    # (0.60 < 0.70) -> holds; black box 0.8 vs 0.7 and 0.9 -> does not hold
    assert [found[k]["verdict"] for k in CLAIM_KEYS][1:] == ["holds", "holds", "does not hold"]
    readme = tmp_path / "README.md"
    readme.write_text(f"{FINDINGS_START}\n{FINDINGS_END}\n")
    write_report(run, tmp_path / "out2", readme=readme)
    assert "| A-GD beats D-AG at small eps |" in readme.read_text()
    row = next(line for line in readme.read_text().splitlines() if line.startswith("| A-GD beats D-AG"))
    assert row.endswith("| does not hold | point estimate | n/a | -0.100 | 50 |")


# -- errors ------------------------------------------------------------------------------------------


def test_malformed_json_is_one_line_naming_the_file(run_dir, tmp_path, capsys):
    run = run_dir
    bad = run / "matrices" / "pgd.json"
    bad.write_text('{"names": [')
    with pytest.raises(RunFileError) as exc:
        load_run(run)
    assert str(bad) in str(exc.value) and "\n" not in str(exc.value)
    code, _, err = _cli(["report", str(run), "--out", str(tmp_path / "out")], capsys)
    assert code == 1 and err.startswith("error: ") and str(bad) in err and err.count("\n") == 1
    assert not (tmp_path / "out" / "index.html").exists()


@pytest.mark.parametrize(
    "relpath, change, words",
    [
        ("matrices/pgd.json", {"tm": [[1.0, 0.5]]}, "4x4"),
        ("evaluations/trend3/evaluation.json", {"table": "none"}, "'table' must be a list"),
        ("exports/trend3.infer.json", {"accuracy": "high"}, "accuracy must be a number"),
        ("ensembles/trend3.json", {"format": "other"}, "trendcli-ensemble/2"),
        ("models/q1-s0/model.json", {"spec": None}, "no 'spec'"),
    ],
)
def test_wrong_shapes_name_the_file(run_dir, relpath, change, words):
    run = run_dir
    path = run / relpath
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    with pytest.raises(RunFileError, match=words) as exc:
        load_run(run)
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)


def test_an_onnx_file_that_is_not_an_export_names_the_file(run_dir):
    bad = run_dir / "exports" / "trend3.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(OnnxExportError) as exc:
        load_run(run_dir)
    assert str(bad) in str(exc.value) and "\n" not in str(exc.value)


def test_not_a_run_directory(tmp_path):
    with pytest.raises(UsageError, match="no run directory"):
        load_run(tmp_path / "missing")
    with pytest.raises(UsageError, match="not a trendcli run directory"):
        load_run(tmp_path)


# -- README splicing -------------------------------------------------------------------------------


def test_splice_replaces_only_between_the_markers(tmp_path):
    readme = tmp_path / "README.md"
    before = "# Title\n\nIntro | with a pipe.\n\n"
    after = "\n\n## Later\ntext\n"
    readme.write_text(f"{before}{FINDINGS_START}\nold table\n{FINDINGS_END}{after}")
    readme.chmod(0o640)
    assert splice_findings(readme, "| a | b |\n| - | - |\n") is True
    assert readme.stat().st_mode & 0o777 == 0o640  # the rename keeps the README's mode
    assert readme.read_text() == f"{before}{FINDINGS_START}\n| a | b |\n| - | - |\n{FINDINGS_END}{after}"
    assert splice_findings(readme, "| a | b |\n| - | - |\n") is False  # same table: unchanged
    assert [p.name for p in tmp_path.iterdir()] == ["README.md"]  # no temp files left behind


@pytest.mark.parametrize("text", ["no markers\n", f"{FINDINGS_END}\n{FINDINGS_START}\n", f"{FINDINGS_START}\n{FINDINGS_START}\n{FINDINGS_END}\n"])
def test_splice_needs_one_pair_of_markers_in_order(tmp_path, text):
    readme = tmp_path / "README.md"
    readme.write_text(text)
    with pytest.raises(UsageError, match="README.md"):
        splice_findings(readme, "| x |\n")
    assert readme.read_text() == text


def test_cli_writes_report_and_readme(template, tmp_path, capsys):
    run = template
    readme = tmp_path / "README.md"
    readme.write_text(f"# demo\n{FINDINGS_START}\n{FINDINGS_END}\n")
    code, out, _ = _cli(["report", str(run), "--out", str(tmp_path / "out"), "--readme", str(readme), "--json"], capsys)
    assert code == 0
    summary = json.loads(out)
    assert summary["readme_changed"] is True and len(summary["findings"]) == 8
    text = readme.read_text()
    assert text.startswith(f"# demo\n{FINDINGS_START}\nFindings of study `demo`") and text.endswith(f"{FINDINGS_END}\n")
    assert (tmp_path / "out" / "findings.md").read_text().strip() in text


def test_all_text_is_escaped(run_dir, tmp_path):
    run = run_dir
    study = json.loads((run / "study.json").read_text())
    study["name"] = "<script>alert(1)</script>"
    (run / "study.json").write_text(json.dumps(study))
    page = write_report(run, tmp_path / "out").index.read_text()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


# -- rendering in a browser ------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium package is not installed")
def test_chromium_renders_a_page_that_is_not_blank(template, tmp_path):
    from PIL import Image

    report = write_report(template, tmp_path / "out")
    shot = tmp_path / "shot.png"
    cmd = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1280,2000",
           report.index.resolve().as_uri()]
    subprocess.run(cmd, capture_output=True, timeout=60, check=False)
    assert shot.is_file(), "chromium wrote no screenshot"
    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3)
    non_white = (pixels < 245).any(axis=1).mean()
    colours = len(np.unique(pixels[:: 7], axis=0))
    # a page with only the header bar: 7.5% non-white, 2 colours; the report: ~22% and thousands of colours
    assert non_white > 0.12 and colours > 200


def test_the_report_and_its_rules_load_without_torch():
    import sys

    code = ("import sys, trendcli.stats, trendcli.report.html, trendcli.report.ensemble_findings; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'scipy'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
