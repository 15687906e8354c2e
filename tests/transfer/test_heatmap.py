"""Paper-style heatmap: a real PNG, undefined cells, short labels."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from trendcli.transfer.heatmap import plot_heatmap, short_labels
from trendcli.transfer.counts import averages

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_heatmap_file_is_a_real_png_with_undefined_cells(tmp_path):
    tm = np.array([[1.0, 0.25, np.nan], [0.5, 1.0, 0.75], [0.0, 0.1, 1.0]])
    rows, cols = averages(tm)
    path = plot_heatmap(tm, tmp_path / "sub" / "tm.png", ["fp", "q1", "q2"], row_avg=rows, col_avg=cols, title="t")
    assert path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > 300 and im.size[1] > 300
        pixels = np.asarray(im.convert("RGB"))
    # the grey of undefined cells (#d0d0d0) is drawn somewhere
    assert (np.abs(pixels.astype(int) - 0xD0).max(axis=2) <= 2).any()


def test_heatmap_without_averages_and_label_count_check(tmp_path):
    path = plot_heatmap(np.eye(2), tmp_path / "eye.png", ["a", "b"])
    assert path.read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(ValueError, match="3 row / 3 column labels for a 2x2"):
        plot_heatmap(np.eye(2), tmp_path / "bad.png", ["a", "b", "c"])


def test_short_labels_drop_shared_id_parts():
    names = ["smallcnn.fp-w32-a32.sgd.s0", "smallcnn.q1-w32-a32.sgd.s0", "smallcnn.fp-w32-a32.sgd.s1"]
    # shared: smallcnn, w32, a32, sgd -> fp.s0, q1.s0, fp.s1
    assert short_labels(names) == ["fp.s0", "q1.s0", "fp.s1"]
    # names that differ only in something dropped would collide: keep the full names
    assert short_labels(["a.x", "a.x"]) == ["a.x", "a.x"]
    assert short_labels(["only"]) == ["only"]
