"""The adversarial-set store: one HDF5 file per set, named by the content key of its spec.

Only this package reads and writes adversarial sets. A set for N images of shape [C, H, W]
is one file ``<root>/<key>.h5`` holding flat datasets

    indices, labels, clean_pred, adv_pred   int64 [N]
    success                                 bool [N]   adv_pred != label (untargeted)
    linf, l2                                float32 [N] max|adv - clean|, ||adv - clean||_2
    adv                                     float32 [N, C, H, W] in [0, 1], chunked along N

each with a fletcher32 checksum, and plain attributes ``format`` ("trendcli-advset/2"; version
1 files, without checksums, are still read), ``key``, ``spec`` (canonical JSON), ``versions``,
``timing`` (JSON) and ``created`` (ISO 8601, UTC).

Modules: ``keys`` (specs, content keys, input checks), ``reader`` (AdvSet), ``writer``
(AdvSetWriter: chunked, resumable, atomic, one writer per key via ``<key>.lock``),
``directory`` (AdvStore), ``predictions`` (PredictionCache: each target's predictions on
each set, ``<root>/predictions/<key>.h5``, format "trendcli-predictions/1"), ``files`` (HDF5 opening, OSError -> StoreError).
"""

from trendcli.adversarial.store.directory import DEFAULT_ROOT, AdvStore
from trendcli.adversarial.store.keys import (
    ATTACK_CODE_VERSION,
    FIELDS,
    FORMAT,
    PARTIAL_FORMAT,
    READ_FORMATS,
    canonical_json,
    content_key,
    indices_sha256,
    make_spec,
    perturbation_norms,
)
from trendcli.adversarial.store.predictions import PREDICTIONS_FORMAT, PredictionCache, Predictions, prediction_spec
from trendcli.adversarial.store.reader import AdvSet
from trendcli.adversarial.store.writer import (
    CHECKSUM,
    COMPRESSION,
    COMPRESSION_LEVEL,
    DEFAULT_CHUNK_SIZE,
    SHUFFLE,
    AdvSetWriter,
    Chunk,
)

__all__ = [
    "ATTACK_CODE_VERSION",
    "CHECKSUM",
    "COMPRESSION",
    "COMPRESSION_LEVEL",
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_ROOT",
    "FIELDS",
    "FORMAT",
    "PARTIAL_FORMAT",
    "PREDICTIONS_FORMAT",
    "READ_FORMATS",
    "SHUFFLE",
    "AdvSet",
    "AdvSetWriter",
    "AdvStore",
    "Chunk",
    "PredictionCache",
    "Predictions",
    "canonical_json",
    "content_key",
    "indices_sha256",
    "make_spec",
    "perturbation_norms",
    "prediction_spec",
]
