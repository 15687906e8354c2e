"""Atomic writes and output checks: nothing trendcli did not write is replaced, every OS error is one line."""

from __future__ import annotations

import json
import stat

import pytest

from trendcli.errors import FileAccessError, OutputExistsError
from trendcli.fsio import atomic_dir, check_output, write_json_atomic, writable_dir

from .conftest import mounted_tmpfs


def _is_model(p):
    return (p / "model.json").is_file()


def test_check_output_absent_is_fine(tmp_path):
    assert check_output(tmp_path / "new", "model", _is_model, directory=True) is False


def test_check_output_refuses_a_users_directory_even_with_force(tmp_path):
    docs = tmp_path / "mydocs"
    docs.mkdir()
    (docs / "thesis.txt").write_text("draft")
    for force in (False, True):
        with pytest.raises(OutputExistsError, match="is not a model written by trendcli"):
            check_output(docs, "model", _is_model, force=force, directory=True)
    assert (docs / "thesis.txt").read_text() == "draft"


def test_check_output_refuses_a_file_where_a_directory_goes_and_the_reverse(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputExistsError, match="is not a directory"):
        check_output(tmp_path / "f", "model", _is_model, directory=True)
    with pytest.raises(OutputExistsError, match="is a directory"):
        check_output(tmp_path, "ensemble", lambda p: True)


def test_finished_artifact_needs_force_and_foreign_files_block_it(tmp_path):
    m = tmp_path / "m"
    m.mkdir()
    (m / "model.json").write_text("{}")
    with pytest.raises(OutputExistsError, match="already holds a finished model; pass force=True"):
        check_output(m, "model", _is_model, directory=True, own_files=["model.json"])
    assert check_output(m, "model", _is_model, force=True, directory=True, own_files=["model.json"]) is True
    (m / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match=r"holds files trendcli did not write \(notes.txt\)"):
        check_output(m, "model", _is_model, force=True, directory=True, own_files=["model.json"])


def test_write_json_atomic_keeps_umask_permissions_and_refuses_a_directory(tmp_path):
    write_json_atomic(tmp_path / "a.json", {"x": 1})
    mode = stat.S_IMODE((tmp_path / "a.json").stat().st_mode)
    assert mode & 0o044 == 0o044  # group/other readable under the default umask 022
    (tmp_path / "d.json").mkdir()
    with pytest.raises(FileAccessError, match="is a directory"):
        write_json_atomic(tmp_path / "d.json", {})
    (tmp_path / "file").write_text("")
    with pytest.raises(FileAccessError, match="is a file, not a directory"):
        write_json_atomic(tmp_path / "file" / "x.json", {})
    with pytest.raises(FileAccessError, match="is a file, not a directory"):
        writable_dir(tmp_path / "file", "run directory")


def test_read_only_filesystem_is_one_line_and_keeps_old_content(tmp_path):
    ro = tmp_path / "ro"
    with mounted_tmpfs(ro) as read_only:
        write_json_atomic(ro / "a.json", {"v": 1})
        read_only()
        with pytest.raises(FileAccessError, match="Read-only file system"):
            write_json_atomic(ro / "a.json", {"v": 2})
        with pytest.raises(FileAccessError, match="Read-only file system"):
            with atomic_dir(ro / "m"):
                pass
        with pytest.raises(FileAccessError, match="not writable"):
            writable_dir(ro, "store")
        assert json.loads((ro / "a.json").read_text()) == {"v": 1}


def test_full_filesystem_is_one_line_and_leaves_no_temp_file(tmp_path):
    full = tmp_path / "full"
    with mounted_tmpfs(full, size="64k"):
        with pytest.raises(FileAccessError, match="No space left on device"):
            write_json_atomic(full / "big.json", {"x": "y" * 200_000})
        assert list(full.iterdir()) == []
