"""The hostile-input campaign as data: each case builds its inputs in a fresh directory and gives
the `trend` arguments; the files it lists must come out byte for byte as they went in."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

NOT_UTF8 = b"\xff\xfe\x00bad\x80"


@dataclass
class Case:
    id: str
    build: Callable[..., list]  # (zoo, tmp) -> argv; may create files
    keep: list[str] = field(default_factory=list)  # paths under tmp that must be unchanged
    env: dict[str, str] = field(default_factory=dict)
    xfail: str = ""  # a known traceback, fixed outside tests/hostile's owner's files


def _file(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def _copy_model(z, t: Path, name: str = "model") -> Path:
    return Path(shutil.copytree(z.m1, t / name))


def _copy_ensemble(z, t: Path) -> Path:
    data = json.loads(z.ensemble.read_text())
    for m in data["members"]:
        m["path"] = str((z.ensemble.parent / m["path"]).resolve())
    return _file(t / "ens.json", json.dumps(data))


def _model_card(z, t: Path, change: Callable[[dict], object]) -> Path:
    model = _copy_model(z, t)
    card = json.loads((model / "model.json").read_text())
    new = change(card)
    _file(model / "model.json", json.dumps(card if new is None else new))
    return model


def _study(z, t: Path, extra: str = "", replace: tuple[str, str] = ("", "")) -> Path:
    return _file(t / "study.toml", z.study.read_text().replace(*replace) + extra)


def _corrupt_store(z, t: Path) -> Path:
    store = Path(shutil.copytree(z.store, t / "adv"))
    for h5 in store.glob("*.h5"):
        data = bytearray(h5.read_bytes())
        data[len(data) // 2 : len(data) // 2 + 4096] = bytes(4096)  # zeros over stored images
        h5.write_bytes(bytes(data))
    return store


TRAIN = ["train", "--epochs", "1", "--limit-train", "64", "--device", "cpu"]
ATTACK = ["attack", "--limit", "8", "--steps", "1", "--device", "cpu"]


def _attack(z, t, *more):
    return [*ATTACK, "--model", z.m1, "--store", t / "adv", *more]


def _matrix(z, t, *more):
    return ["matrix", "--model", z.m1, "--model", z.m2, "--limit", "8", "--steps", "1", "--store", z.store,
            "--device", "cpu", *more]


CASES: list[Case] = [
    # -- train --out: nothing trendcli did not write is replaced ----------------------------------
    Case("train-out-user-dir", lambda z, t: [*TRAIN, "--out", _file(t / "mydocs" / "thesis.txt", "draft").parent],
         keep=["mydocs/thesis.txt"]),
    Case("train-out-regular-file", lambda z, t: [*TRAIN, "--out", _file(t / "notes", "mine")], keep=["notes"]),
    Case("train-out-finished-model-no-force", lambda z, t: [*TRAIN, "--out", _copy_model(z, t)],
         keep=["model/model.safetensors", "model/model.json"]),
    Case("train-out-model-with-user-file-force",
         lambda z, t: [*TRAIN, "--force", "--out", _file(_copy_model(z, t) / "mine.txt", "x").parent],
         keep=["model/mine.txt", "model/model.safetensors"]),
    Case("train-out-under-a-file", lambda z, t: [*TRAIN, "--out", _file(t / "f", "x") / "m"], keep=["f"]),
    Case("train-epochs-0", lambda z, t: [*TRAIN, "--epochs", "0", "--out", t / "m"]),
    Case("train-unknown-arch", lambda z, t: [*TRAIN, "--arch", "nope", "--out", t / "m"]),
    Case("train-limit-negative", lambda z, t: [*TRAIN, "--limit-train", "-3", "--out", t / "m"]),
    Case("train-epochs-text", lambda z, t: [*TRAIN, "--epochs", "many", "--out", t / "m"]),
    # -- attack --------------------------------------------------------------------------------------
    Case("attack-eps-2", lambda z, t: _attack(z, t, "--eps", "2")),
    Case("attack-eps-0", lambda z, t: _attack(z, t, "--eps", "0")),
    Case("attack-eps-negative", lambda z, t: _attack(z, t, "--eps", "-8/255")),
    Case("attack-eps-text", lambda z, t: _attack(z, t, "--eps", "big")),
    Case("attack-eps-div-zero", lambda z, t: _attack(z, t, "--eps", "1/0")),
    Case("attack-store-is-a-file", lambda z, t: [*ATTACK, "--model", z.m1, "--store", _file(t / "README.md", "hi")],
         keep=["README.md"]),
    Case("attack-model-not-a-model", lambda z, t: [*ATTACK, "--model", _file(t / "d" / "x", "y").parent, "--store", t / "a"]),
    Case("attack-model-missing", lambda z, t: [*ATTACK, "--model", t / "nope", "--store", t / "a"]),
    Case("attack-model-is-a-file", lambda z, t: [*ATTACK, "--model", _file(t / "m", "x"), "--store", t / "a"]),
    Case("attack-unknown-method", lambda z, t: _attack(z, t, "--method", "nope")),
    # -- malformed model cards and weights -----------------------------------------------------------
    Case("model-card-not-utf8", lambda z, t: [*ATTACK, "--model", _file(_copy_model(z, t) / "model.json", NOT_UTF8).parent,
                                               "--store", t / "a"]),
    Case("model-card-not-json", lambda z, t: [*ATTACK, "--model", _file(_copy_model(z, t) / "model.json", "{").parent,
                                               "--store", t / "a"]),
    Case("model-card-a-list", lambda z, t: [*ATTACK, "--model", _model_card(z, t, lambda c: [c]), "--store", t / "a"]),
    Case("model-card-spec-a-string", lambda z, t: [*ATTACK, "--model", _model_card(z, t, lambda c: c.update(spec="x")),
                                                    "--store", t / "a"]),
    Case("model-card-wrong-types", lambda z, t: [*ATTACK, "--model",
                                                  _model_card(z, t, lambda c: c["spec"].update(weight_bits="four")),
                                                  "--store", t / "a"]),
    Case("model-card-5-classes", lambda z, t: [*ATTACK, "--model", _model_card(z, t, lambda c: c["spec"].update(num_classes=5)),
                                                "--store", t / "a"]),
    Case("model-weights-changed", lambda z, t: [*ATTACK, "--model",
                                                 _file(_copy_model(z, t) / "model.safetensors", b"\x08" + bytes(16)).parent,
                                                 "--store", t / "a"]),
    # -- matrix -----------------------------------------------------------------------------------------
    Case("matrix-out-json-is-a-dir", lambda z, t: _matrix(z, t, "--out", (t / "X.json").mkdir() or t / "X")),
    Case("matrix-out-json-foreign", lambda z, t: _matrix(z, t, "--out", _file(t / "X.json", '{"mine": 1}').with_suffix("")),
         keep=["X.json"]),
    Case("matrix-out-csv-foreign", lambda z, t: _matrix(z, t, "--out", _file(t / "X.csv", "a,b").with_suffix("")),
         keep=["X.csv"]),
    Case("matrix-out-under-a-file", lambda z, t: _matrix(z, t, "--out", _file(t / "f", "x") / "X"), keep=["f"]),
    Case("matrix-eps-2", lambda z, t: _matrix(z, t, "--eps", "2", "--out", t / "X")),
    Case("matrix-one-model", lambda z, t: ["matrix", "--model", z.m1, "--out", t / "X"]),
    Case("matrix-models-dir-a-file", lambda z, t: ["matrix", "--models-dir", _file(t / "f", "x"), "--out", t / "X"]),
    Case("matrix-store-is-a-file", lambda z, t: ["matrix", "--model", z.m1, "--model", z.m2, "--limit", "8",
                                                  "--store", _file(t / "README.md", "x"), "--out", t / "X"],
         keep=["README.md"]),
    # -- design -----------------------------------------------------------------------------------------
    Case("design-matrix-dir", lambda z, t: ["design", "--matrix", (t / "d").mkdir() or t / "d", "--size", "2"]),
    Case("design-matrix-missing", lambda z, t: ["design", "--matrix", t / "none.json", "--size", "2"]),
    Case("design-matrix-readme", lambda z, t: ["design", "--matrix", _file(t / "README.md", "# hi"), "--size", "2"]),
    Case("design-matrix-not-utf8", lambda z, t: ["design", "--matrix", _file(t / "m.json", NOT_UTF8), "--size", "2"]),
    Case("design-matrix-a-list", lambda z, t: ["design", "--matrix", _file(t / "m.json", "[1, 2]"), "--size", "2"]),
    Case("design-matrix-damaged", lambda z, t: ["design", "--matrix", _file(t / "m.json", json.dumps(
        {k: v for k, v in json.loads(z.matrix.read_text()).items() if k != "n_t"})), "--size", "2"]),
    Case("design-matrix-wrong-shape", lambda z, t: ["design", "--matrix", _file(t / "m.json", json.dumps(
        {**json.loads(z.matrix.read_text()), "n_t": [[1]]})), "--size", "2"]),
    Case("design-require-unknown", lambda z, t: ["design", "--matrix", z.matrix, "--size", "2", "--require", "nope"]),
    Case("design-size-1", lambda z, t: ["design", "--matrix", z.matrix, "--size", "1"]),
    Case("design-size-too-big", lambda z, t: ["design", "--matrix", z.matrix, "--size", "9"]),
    Case("design-out-dir", lambda z, t: ["design", "--matrix", z.matrix, "--size", "2", "--out", (t / "o").mkdir() or t / "o"]),
    Case("design-out-foreign", lambda z, t: ["design", "--matrix", z.matrix, "--size", "2", "--out", _file(t / "o.json", "{}")],
         keep=["o.json"]),
    Case("design-out-ensemble-no-force", lambda z, t: ["design", "--matrix", z.matrix, "--size", "2", "--out", _copy_ensemble(z, t)],
         keep=["ens.json"]),
    # -- export-ensemble and infer ---------------------------------------------------------------------
    Case("export-out-dir", lambda z, t: ["export-ensemble", "--ensemble", z.ensemble, "--out", (t / "o").mkdir() or t / "o"]),
    Case("export-out-foreign", lambda z, t: ["export-ensemble", "--ensemble", z.ensemble, "--out", _file(t / "o.onnx", "mine")],
         keep=["o.onnx"]),
    Case("export-out-check-foreign", lambda z, t: ["export-ensemble", "--ensemble", z.ensemble, "--out",
                                                   _file(t / "o.infer.json", "mine").with_name("o.onnx")],
         keep=["o.infer.json"]),
    Case("export-out-onnx-no-force", lambda z, t: ["export-ensemble", "--ensemble", z.ensemble, "--out",
                                                   Path(shutil.copy(z.onnx, t / "e.onnx"))], keep=["e.onnx"]),
    Case("export-ensemble-not-json", lambda z, t: ["export-ensemble", "--ensemble", _file(t / "e.json", "x"), "--out", t / "o.onnx"]),
    Case("export-ensemble-not-utf8", lambda z, t: ["export-ensemble", "--ensemble", _file(t / "e.json", NOT_UTF8), "--out", t / "o.onnx"]),
    Case("export-ensemble-a-matrix", lambda z, t: ["export-ensemble", "--ensemble", z.matrix, "--out", t / "o.onnx"]),
    Case("export-ensemble-dir", lambda z, t: ["export-ensemble", "--ensemble", t, "--out", t / "o.onnx"]),
    Case("export-opset-99", lambda z, t: ["export-ensemble", "--ensemble", z.ensemble, "--opset", "99", "--out", t / "o.onnx"]),
    Case("export-neither", lambda z, t: ["export-ensemble", "--out", t / "o.onnx"]),
    Case("infer-not-onnx", lambda z, t: ["infer", "--onnx", _file(t / "x.onnx", "not onnx")]),
    Case("infer-not-utf8", lambda z, t: ["infer", "--onnx", _file(t / "x.onnx", NOT_UTF8)]),
    Case("infer-onnx-dir", lambda z, t: ["infer", "--onnx", t]),
    Case("infer-onnx-missing", lambda z, t: ["infer", "--onnx", t / "x.onnx"]),
    Case("infer-image-missing", lambda z, t: ["infer", "--onnx", z.onnx, "--images", t / "no.png"]),
    Case("infer-image-not-an-image", lambda z, t: ["infer", "--onnx", z.onnx, "--images", _file(t / "a.png", "text")]),
    # -- evaluate -----------------------------------------------------------------------------------------
    Case("evaluate-eps-2", lambda z, t: ["evaluate", "--ensemble", z.ensemble, "--eps", "2", "--out", t / "ev"]),
    Case("evaluate-ensemble-not-utf8", lambda z, t: ["evaluate", "--ensemble", _file(t / "e.json", NOT_UTF8), "--out", t / "ev"]),
    Case("evaluate-out-user-dir", lambda z, t: ["evaluate", "--ensemble", z.ensemble, "--limit", "8", "--eps", "0.1",
                                                "--out", _file(t / "ev" / "thesis.txt", "draft").parent],
         keep=["ev/thesis.txt"]),
    Case("evaluate-out-a-file", lambda z, t: ["evaluate", "--ensemble", z.ensemble, "--out", _file(t / "ev", "x")], keep=["ev"]),
    # -- sweep --------------------------------------------------------------------------------------------
    Case("sweep-eps-2", lambda z, t: ["sweep", "--source", z.m1, "--target", z.m2, "--eps", "0.1,2", "--out", t / "s"]),
    Case("sweep-out-json-foreign", lambda z, t: ["sweep", "--source", z.m1, "--target", z.m2, "--eps", "0.1",
                                                 "--out", _file(t / "s.json", "{}").with_suffix("")], keep=["s.json"]),
    # -- report --------------------------------------------------------------------------------------------
    Case("report-not-a-run", lambda z, t: ["report", (t / "empty").mkdir() or t / "empty"]),
    Case("report-run-missing", lambda z, t: ["report", t / "none"]),
    Case("report-out-user-dir", lambda z, t: ["report", z.root, "--out", _file(t / "r" / "thesis.txt", "x").parent],
         keep=["r/thesis.txt"]),
    # -- run: study files ------------------------------------------------------------------------------------
    Case("run-study-not-utf8", lambda z, t: ["run", _file(t / "s.toml", NOT_UTF8)]),
    Case("run-study-not-toml", lambda z, t: ["run", _file(t / "s.toml", "[study\nname=")]),
    Case("run-study-missing", lambda z, t: ["run", t / "s.toml"]),
    Case("run-study-dir", lambda z, t: ["run", t]),
    Case("run-limit-train-text", lambda z, t: ["run", _study(z, t, replace=("limit_train = 128", 'limit_train = "many"'))]),
    Case("run-model-name-dotdot", lambda z, t: ["run", _study(z, t, '\n[[models]]\nname = "../../../../victim"\narch = "smallcnn"\n')]),
    Case("run-run-dir-not-a-string", lambda z, t: ["run", _study(z, t, replace=('name = "hostile"', 'name = "hostile"\nrun_dir = 5'))]),
    Case("run-per-image-string", lambda z, t: ["run", _study(z, t, replace=("[zoo]", '[zoo]\nper_image = "false"'))]),
    Case("run-unknown-stage", lambda z, t: ["run", z.study, "--only", "nope", "--run-dir", t / "r"]),
    Case("run-unknown-executor", lambda z, t: ["run", z.study, "--executor", "nope", "--run-dir", t / "r"]),
    Case("run-run-dir-a-file", lambda z, t: ["run", z.study, "--run-dir", _file(t / "r", "x")], keep=["r"]),
    Case("report-study-json-not-utf8", lambda z, t: ["report", _file(
        Path(shutil.copytree(z.run, t / "r")) / "study.json", NOT_UTF8).parent, "--out", t / "o"]),
    # -- store sets ------------------------------------------------------------------------------------
    Case("store-set-corrupt", lambda z, t: [*_matrix(z, t, "--out", t / "X")[:-2], "--store", _corrupt_store(z, t)]),
    # -- plugins -----------------------------------------------------------------------------------------------
    Case("plugins-unknown-distribution", lambda z, t: ["plugins"], env={"TREND_PLUGINS": "nonexistent"}),
    Case("unknown-command", lambda z, t: ["frobnicate"]),
    Case("unknown-option", lambda z, t: ["train", "--bogus"]),
]
