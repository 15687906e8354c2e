"""Study files: parsing, the zoo product, and validation errors that name the line and key."""

from __future__ import annotations

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
        (MINIMAL.replace("epochs = 1", "epochs = 0"), None, "expected a positive integer"),
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
