"""Study files: parsing, the zoo product, and validation errors that name the line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from trendcli.errors import StudyError
from trendcli.study import load_study

MINIMAL = """
[study]
name = "tiny"
dataset = "fashion-mnist"

[train]
epochs = 1
limit_train = 256

[zoo]
arch = "smallcnn"
input_quant = ["fp", "q1"]
seed = [0, 1]

[[models]]
name = "w2"
weight_bits = 2

[[attacks]]
name = "pgd"
method = "pgd"
eps = 0.1
steps = 5

[[matrices]]
name = "pgd"
attack = "pgd"
limit = 64

[[ensembles]]
name = "trend2"
matrix = "pgd"
size = 2

[[evaluations]]
name = "robust"
ensemble = "trend2"
attacks = ["agd", "dag"]
eps = [0.05, 0.1]
limit = 32
steps = 5

[[exports]]
name = "deploy"
ensemble = "trend2"
infer_limit = 100
"""


def write(tmp_path, text):
    path = tmp_path / "study.toml"
    path.write_text(text)
    return path


def test_zoo_is_a_product_plus_explicit_models(tmp_path):
    study = load_study(write(tmp_path, MINIMAL))
    names = [m.name for m in study.models]
    # 2 input quantizers x 2 seeds from [zoo], plus one explicit model
    assert names == ["smallcnn-fp-s0", "smallcnn-fp-s1", "smallcnn-q1-s0", "smallcnn-q1-s1", "w2"]
    assert study.model("w2").config["weight_bits"] == 2 and study.model("w2").config["epochs"] == 1
    assert study.dataset == "fashion_mnist"
    assert study.matrices[0].models == tuple(names)  # "all" by default
    assert study.evaluations[0].eps == (0.05, 0.1) and study.evaluations[0].params == {"steps": 5}


@pytest.mark.parametrize(
    "bad, line_text, message",
    [
        (MINIMAL.replace("eps = [0.05, 0.1]", "eps = [0.05, 7]"), "eps = [0.05, 7]", "[evaluations].eps: expected numbers in (0, 1]"),
        (MINIMAL.replace('matrix = "pgd"\nsize = 2', 'matrix = "nope"\nsize = 2'), 'matrix = "nope"', "[ensembles].matrix: unknown matrix 'nope'; known: pgd"),
        (MINIMAL.replace("size = 2", "size = 1"), "size = 1", "[ensembles].size: an ensemble needs at least 2 members"),
        (MINIMAL.replace("epochs = 1", "epochs = 0"), "epochs = 0", "[train].epochs: expected an integer in 1..inf, got 0"),
        (MINIMAL.replace("limit_train = 256", "limit_train = 256\ncolour = 3"), "colour = 3", "[train].colour: unknown key"),
        (MINIMAL.replace('name = "w2"', 'name = "smallcnn-fp-s0"'), 'name = "smallcnn-fp-s0"', "is used twice"),
    ],
)
def test_validation_errors_name_line_and_key(tmp_path, bad, line_text, message):
    path = write(tmp_path, bad)
    with pytest.raises(StudyError) as exc:
        load_study(path)
    text = str(exc.value)
    assert message in text
    if line_text is not None:
        # "<path>:<line>: ..." and that line of the file holds the offending key
        line = int(text[len(str(path)) + 1 :].split(":", 1)[0])
        assert bad.splitlines()[line - 1].strip() == line_text, text


def test_toml_syntax_error_and_missing_file(tmp_path):
    with pytest.raises(StudyError, match="not valid TOML"):
        load_study(write(tmp_path, "[study\nname = 1"))
    with pytest.raises(StudyError, match="cannot read study file"):
        load_study(tmp_path / "absent.toml")
    with pytest.raises(StudyError, match="no models"):
        load_study(write(tmp_path, "[study]\nname = 'x'\n"))


# Every case of the hostile-input campaign on study files: each is caught when the study is
# loaded (before any work), with file:line, the study key and what is allowed.
HOSTILE = [
    ("limit_train = 256", 'limit_train = "many"', "[train].limit_train: expected an integer"),
    ('name = "w2"\nweight_bits = 2', 'name = "w2"\nweight_bits = 2\nper_image = "false"', "[models].per_image: expected true or false"),
    ('name = "w2"', 'name = "../../../../victim"', "[models].name: '../../../../victim' is not a valid name"),
    ('name = "w2"', 'name = "a/b"', "[models].name: 'a/b' is not a valid name"),
    ('name = "w2"', 'name = ".."', "[models].name: '..' is not a valid name"),
    ('name = "tiny"', 'name = "../tiny"', "[study].name: '../tiny' is not a valid name"),
    ('method = "pgd"', 'method = "pdg"', "[attacks].method: unknown attack 'pdg'; known:"),
    ("eps = 0.1\nsteps = 5", "eps = 0.1\nstpes = 5", "[attacks].stpes: attack 'pgd' takes no parameter 'stpes'; allowed:"),
    ("eps = 0.1\nsteps = 5", "eps = 2\nsteps = 5", "[attacks].eps: expected a number in (0, 1]"),
    ("eps = 0.1\nsteps = 5", "eps = 0.1\nsteps = 0", "[attacks].steps: expected an integer in 1..inf"),
    ("infer_limit = 100", "infer_limit = 100\nopset = 99", "[exports].opset: expected an integer in 13..20"),
    ('matrix = "pgd"\nsize = 2', 'matrix = "pgd"\nsize = 2\ntie_break = "coin"', "[ensembles].tie_break: expected one of paper, first, confidence"),
    ("size = 2", "size = 9", "[ensembles].size: size 9 exceeds the 5 candidate models"),
    ('matrix = "pgd"\nsize = 2', 'matrix = "pgd"\nsize = 2\nrequire = ["ghost"]', "[ensembles].require: unknown model of matrix 'pgd' 'ghost'"),
    ("limit = 64", "limit = 0", "[matrices].limit: expected an integer in 1..inf"),
    ("limit = 64", 'limit = 64\ngroup_by = ["colour"]', "[matrices].group_by: unknown group_by field 'colour'"),
    ('dataset = "fashion-mnist"', 'dataset = "mnist-ish"', "[study].dataset: unknown dataset 'mnist_ish'"),
    ('attacks = ["agd", "dag"]', 'attacks = ["agd", "dga"]', "[evaluations].attacks: unknown ensemble attack rule 'dga'"),
    ('arch = "smallcnn"', 'arch = "smalcnn"', "[zoo].arch: unknown architecture 'smalcnn'"),
    ('input_quant = ["fp", "q1"]', 'input_quant = ["fp", "q9"]', "[zoo].input_quant: unknown input quantizer 'q9'"),
    ("weight_bits = 2", "weight_bits = 20", "[models].weight_bits: expected 1..16 bits"),
]


@pytest.mark.parametrize("old, new, message", HOSTILE, ids=[h[1].split("\n")[-1] for h in HOSTILE])
def test_hostile_study_values_fail_at_load_with_line_and_key(tmp_path, old, new, message):
    assert old in MINIMAL
    path = write(tmp_path, MINIMAL.replace(old, new, 1))
    with pytest.raises(StudyError) as exc:
        load_study(path)
    text = str(exc.value)
    assert message in text, text
    assert text.startswith(f"{path}:"), text
    line = int(text[len(str(path)) + 1 :].split(":", 1)[0])
    assert "=" in MINIMAL.replace(old, new, 1).splitlines()[line - 1], text


def test_report_enabled_must_be_a_boolean(tmp_path):
    with pytest.raises(StudyError, match=r"\[report\]\.enabled: expected true or false"):
        load_study(write(tmp_path, MINIMAL + '\n[report]\nenabled = "false"\n'))
    assert load_study(write(tmp_path, MINIMAL + "\n[report]\nenabled = false\n")).report is False


def test_study_file_that_is_not_utf8_or_a_directory(tmp_path):
    path = tmp_path / "study.toml"
    path.write_bytes(MINIMAL.encode() + b"\n# caf\xe9\n")
    with pytest.raises(StudyError, match="not UTF-8"):
        load_study(path)
    with pytest.raises(StudyError, match="is a directory"):
        load_study(tmp_path)


def test_paths_resolve_against_the_study_file(tmp_path, monkeypatch):
    sub = tmp_path / "studies"
    sub.mkdir()
    path = sub / "study.toml"
    path.write_text(MINIMAL.replace('name = "tiny"', 'name = "tiny"\nrun_dir = "../out/tiny"\ndata_dir = "data"'))
    monkeypatch.chdir(tmp_path / "studies")
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.chdir(other)
    study = load_study(path)
    assert study.run_dir.resolve() == (tmp_path / "out" / "tiny").resolve()
    assert study.data_dir.resolve() == (sub / "data").resolve()
    assert study.store.resolve() == (tmp_path / "out" / "tiny" / "adv").resolve()
    # an explicit run_dir (the CLI's --run-dir) is the user's path, relative to the working directory
    assert load_study(path, run_dir="r").run_dir == Path("r")


def test_export_opset_bounds_match_the_exporter():
    from trendcli.deploy.export import MAX_OPSET, MIN_OPSET

    assert (MIN_OPSET, MAX_OPSET) == (13, 20)
