"""Read-only run directories work for every command that only reads; a full or read-only
filesystem under a writer is one `error:` line; written files keep the umask's permissions."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from pathlib import Path

import pytest

from ..conftest import mounted_tmpfs
from .conftest import trend


def _readonly_copy(zoo, mount: Path, size: str = "16m"):
    """A read-only tmpfs at ``mount`` holding the finished run, the models, the matrix, the store and the export."""
    ctx = mounted_tmpfs(mount, size)
    read_only = ctx.__enter__()
    for name in ("run", "m1", "m2", "adv", "mx"):
        shutil.copytree(zoo.root / name, mount / name)
    for name in ("ens.onnx", "ens.infer.json", "ens.json", "study.toml"):
        shutil.copy(zoo.root / name, mount / name)
    read_only()
    return ctx


def _tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        h.update(str(p.relative_to(root)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def test_read_only_run_serves_every_reading_command(zoo, tmp_path):
    ro = tmp_path / "ro"
    ctx = _readonly_copy(zoo, ro)
    try:
        before = _tree_digest(ro)
        finished = trend("run", ro / "study.toml", "--run-dir", ro / "run")
        assert finished.code == 0, finished.err
        assert "ran 0 task(s)" in finished.out
        report = trend("report", ro / "run", "--out", tmp_path / "report")
        assert report.code == 0, report.err
        assert (tmp_path / "report" / "index.html").is_file()
        infer = trend("infer", "--onnx", ro / "ens.onnx", "--dataset", "fashion-mnist", "--limit", "16", "--provider", "cpu")
        assert infer.code == 0, infer.err
        matrix = trend("matrix", "--model", ro / "m1", "--model", ro / "m2", "--limit", "32", "--steps", "1", "--eps", "0.1",
                       "--layout", "contiguous", "--device", "cpu", "--store", ro / "adv", "--out", tmp_path / "X")
        assert matrix.code == 0, matrix.err
        assert (tmp_path / "X.json").is_file()
        assert _tree_digest(ro) == before
    finally:
        ctx.__exit__(None, None, None)


def test_writers_into_a_read_only_directory_say_so_in_one_line(zoo, tmp_path):
    ro = tmp_path / "ro"
    ctx = _readonly_copy(zoo, ro)
    try:
        cases = [
            ["train", "--epochs", "1", "--limit-train", "64", "--device", "cpu", "--out", ro / "new"],
            ["attack", "--model", ro / "m1", "--limit", "8", "--steps", "1", "--eps", "0.2", "--device", "cpu",
             "--store", ro / "adv"],
            ["design", "--matrix", ro / "mx" / "pgd.json", "--size", "2", "--out", ro / "e2.json"],
            ["export-ensemble", "--ensemble", zoo.ensemble, "--out", ro / "e2.onnx"],
            ["report", ro / "run"],
            ["run", ro / "study.toml", "--run-dir", ro / "fresh"],
        ]
        for argv in cases:
            result = trend(*argv)
            assert "Traceback" not in result.err, argv
            assert result.code != 0 and len(result.error_lines) == 1 and result.err.strip() == result.error_lines[0], (argv, result.err)
    finally:
        ctx.__exit__(None, None, None)


def test_a_full_filesystem_is_one_error_line_and_keeps_what_was_there(zoo, tmp_path):
    full = tmp_path / "full"
    with mounted_tmpfs(full, "96k"):
        result = trend("attack", "--model", zoo.m1, "--limit", "512", "--steps", "1", "--eps", "0.2", "--device", "cpu",
                       "--layout", "contiguous", "--store", full / "adv")
        assert "Traceback" not in result.err
        assert result.code != 0 and len(result.error_lines) == 1, result.err
        onnx = trend("export-ensemble", "--ensemble", zoo.ensemble, "--out", full / "e.onnx", "--infer-limit", "8")
        assert "Traceback" not in onnx.err
        assert onnx.code != 0 and len(onnx.error_lines) == 1, onnx.err
        assert not (full / "e.onnx").exists()


def _group_other_readable(path: Path) -> bool:
    mode = stat.S_IMODE(path.stat().st_mode)
    return bool(mode & stat.S_IRGRP) and bool(mode & stat.S_IROTH)


@pytest.fixture
def written(zoo, tmp_path) -> dict[str, list[Path]]:
    """A model, an adversarial set and an ONNX export written under umask 022."""
    old = os.umask(0o022)
    try:
        out = tmp_path / "m"
        assert trend("train", "--epochs", "1", "--limit-train", "64", "--device", "cpu", "--out", out).code == 0
        store = tmp_path / "adv"
        assert trend("attack", "--model", out, "--limit", "8", "--steps", "1", "--eps", "0.1", "--device", "cpu",
                     "--store", store).code == 0
        onnx = tmp_path / "e.onnx"
        assert trend("export-ensemble", "--ensemble", zoo.ensemble, "--out", onnx, "--infer-limit", "8").code == 0
    finally:
        os.umask(old)
    return {"model": [out, *out.iterdir()], "onnx": [onnx], "store": [*store.glob("*.h5")]}


def test_onnx_and_store_files_keep_the_umask_permissions(written):
    files = written["onnx"] + written["store"] + written["model"][:1]
    assert len(files) >= 3
    assert [str(p) for p in files if not _group_other_readable(p)] == []


def test_model_files_keep_the_umask_permissions(written):
    assert [str(p) for p in written["model"] if not _group_other_readable(p)] == []
