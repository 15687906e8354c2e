"""Tiny adversarial sets for the store tests: specs, data, writing, comparing."""

from __future__ import annotations

import numpy as np
import torch

from trendcli.adversarial.store import content_key, make_spec

W1, W2, W3 = "a" * 64, "b" * 64, "c" * 64
SHAPE = (1, 2, 3)  # tiny images: C, H, W


def spec_for(indices=None, **over):
    kw = dict(
        weights_sha256=[W1],
        attack="pgd",
        params={"eps": 0.03, "alpha": 0.01, "steps": 40, "random_start": True},
        dataset="fashion_mnist",
        split="test",
        indices=torch.arange(10) if indices is None else indices,
    )
    kw.update(over)
    return make_spec(**kw)


def data(n, seed=0):
    """Clean images, adversarial images (clean + noise, clipped), labels and predictions."""
    g = torch.Generator().manual_seed(seed)
    clean = torch.rand((n, *SHAPE), generator=g)
    adv = (clean + 0.05 * torch.randn((n, *SHAPE), generator=g)).clamp(0, 1)
    labels = torch.randint(0, 10, (n,), generator=g)
    adv_pred = torch.where(torch.rand(n, generator=g) < 0.5, labels, (labels + 1) % 10)
    return {
        "indices": torch.arange(100, 100 + n),
        "labels": labels,
        "adv": adv,
        "clean": clean,
        "clean_pred": labels.clone(),
        "adv_pred": adv_pred,
    }


def write(w, d, chunks=None):
    """Write the given chunks (default: all pending) of data d; returns how many were written."""
    chunks = w.pending_chunks() if chunks is None else chunks
    for c in chunks:
        w.write_chunk(c, **{k: v[c.start : c.stop] for k, v in d.items()})
    return len(chunks)


def finished(st, n=10, chunk_size=4, seed=0):
    """Write a complete set of n images; returns (key, spec, data)."""
    d = data(n, seed)
    spec = spec_for(indices=d["indices"])
    key = content_key(spec)
    with st.writer(key, spec, n=n, image_shape=SHAPE, chunk_size=chunk_size) as w:
        write(w, d)
        w.finish()
    return key, spec, d


def same_set(a, b):
    """Two finished sets hold the same images, vectors and spec (timing and dates aside)."""
    assert a.key == b.key and a.spec == b.spec
    assert np.array_equal(a.read_adv().view(np.int32), b.read_adv().view(np.int32))
    for name in ("indices", "labels", "clean_pred", "adv_pred", "success", "linf", "l2"):
        assert np.array_equal(a.array(name), b.array(name)), name
