"""An ensemble of zoo members with a majority vote, saved as ensemble JSON.

Prediction: votes = sum_k one_hot(argmax f_k(x)); ties broken by a policy (``paper``, seeded;
``first``; ``confidence``) -- docs/method.md, "Ensemble prediction and TREND
design". The vote itself is trendcli.ensemble.vote; this module keeps the members, their weight hashes
and the policy together, and loads the members as the deployment will run them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from trendcli.ensemble.vote import TIE_BREAKS
from trendcli.errors import ModelFileError, UsageError
from trendcli.fsio import write_json_atomic
from trendcli.zoo.files import load_model, read_card

#: /2: member paths are relative to the ensemble file's directory. /1 (read only): relative to
#: the working directory where the file was written, else to the file's directory.
FORMAT = "trendcli-ensemble/2"
FORMAT_V1 = "trendcli-ensemble/1"


@dataclass(frozen=True)
class Member:
    """One ensemble member: its model directory, id and the sha256 of its weights."""

    path: str
    id: str
    weights_sha256: str

    def to_dict(self, relative_to: Path | None = None) -> dict[str, str]:
        """JSON form; ``relative_to`` (a directory) writes the path relative to it."""
        path = os.path.relpath(Path(self.path).absolute(), Path(relative_to).absolute()) if relative_to else self.path
        return {"id": self.id, "path": Path(path).as_posix(), "weights_sha256": self.weights_sha256}


def check_tie_break(tie_break: str) -> str:
    """The policy name, validated (UsageError listing the known ones otherwise)."""
    if tie_break not in TIE_BREAKS:
        raise UsageError(f"unknown tie-break policy {tie_break!r}; known: {', '.join(TIE_BREAKS)}")
    return tie_break


def unique_ids(ids: Sequence[str]) -> list[str]:
    """``ids`` with repeats disambiguated as ``id#2``, ``id#3`` (first occurrence unchanged)."""
    seen: dict[str, int] = {}
    out = []
    for i in ids:
        seen[i] = seen.get(i, 0) + 1
        out.append(i if seen[i] == 1 else f"{i}#{seen[i]}")
    return out


@dataclass
class Ensemble:
    """Members (model dirs + weight sha256 + ids), a tie-break policy and its seed.

    ``tie_break`` defaults to ``paper`` (the authors' seeded random choice among tied classes,
    what the findings use); ``first`` and ``confidence`` are deterministic alternatives, and the
    ONNX export takes one of those (a random tie-break cannot live in a fixed graph).

    ``per_image``: None loads each member's input quantizer as trained; True/False overrides
    the Qb statistics form (True = per image, what the ONNX export deploys; docs/method.md
    "Input quantization"). ``design`` records where the members came from (JSON-ready).
    """

    members: list[Member]
    tie_break: str = "paper"
    seed: int = 0
    per_image: bool | None = None
    design: dict[str, Any] | None = None
    source: Path | None = field(default=None, compare=False)  # the JSON it was loaded from

    def __post_init__(self) -> None:
        if len(self.members) < 1:
            raise UsageError("an ensemble needs at least one member")
        check_tie_break(self.tie_break)
        ids = [m.id for m in self.members]
        if len(set(ids)) != len(ids):
            raise UsageError(f"ensemble member ids must be unique, got {ids}")

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_dirs(
        cls,
        model_dirs: Sequence[str | Path],
        ids: Sequence[str] | None = None,
        tie_break: str = "paper",
        seed: int = 0,
        per_image: bool | None = None,
        design: dict[str, Any] | None = None,
    ) -> "Ensemble":
        """An ensemble of model directories; ids and hashes come from each model.json."""
        cards = [read_card(Path(d)) for d in model_dirs]
        names = list(ids) if ids is not None else unique_ids([c.get("id") or Path(d).name for c, d in zip(cards, model_dirs)])
        if len(names) != len(cards):
            raise UsageError(f"{len(cards)} model directories but {len(names)} ids")
        members = [Member(str(Path(d).absolute()), n, c["weights_sha256"]) for d, n, c in zip(model_dirs, names, cards)]
        return cls(members, tie_break, seed, per_image, design)

    @property
    def ids(self) -> list[str]:
        return [m.id for m in self.members]

    @property
    def size(self) -> int:
        return len(self.members)

    def member_dirs(self) -> list[Path]:
        """Each member's directory, resolved (see ``resolve_member_path``)."""
        return [resolve_member_path(m.path, self.source) for m in self.members]

    def subset(self, ids: Sequence[str]) -> "Ensemble":
        """The sub-ensemble of the named members, in the order given, same policy and seed."""
        by_id = {m.id: m for m in self.members}
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise UsageError(f"not ensemble members: {missing}; members: {self.ids}")
        return Ensemble([by_id[i] for i in ids], self.tie_break, self.seed, self.per_image, None, self.source)

    # -- JSON ------------------------------------------------------------------------------
    def to_dict(self, relative_to: Path | None = None) -> dict[str, Any]:
        """JSON form; ``relative_to`` (the file's directory) makes member paths relative to it."""
        return {
            "format": FORMAT,
            "members": [m.to_dict(relative_to) for m in self.members],
            "tie_break": self.tie_break,
            "seed": self.seed,
            "per_image": self.per_image,
            "design": self.design,
        }

    def save(self, path: str | Path) -> Path:
        """Write the ensemble JSON atomically (temp file + rename)."""
        path = Path(path)
        write_json_atomic(path, self.to_dict(relative_to=path.parent))
        return path

    @classmethod
    def load(cls, path: str | Path, verify: bool = True) -> "Ensemble":
        """Read ensemble JSON; with ``verify``, each member's model.json must carry the recorded sha256.

        A mismatch means a member was retrained or replaced after the ensemble was designed:
        ModelFileError. (Loading the weights, ``models()``, checks the file against model.json.)
        """
        path = Path(path)
        if not path.is_file():
            raise UsageError(f"no ensemble file at {path} (write one with `trend design --out {path}`)")
        try:
            data = json.loads(path.read_bytes().decode("utf-8"))
        except UnicodeDecodeError:
            raise ModelFileError(f"{path} is not UTF-8 text; it is not a trendcli ensemble") from None
        except json.JSONDecodeError as exc:
            raise ModelFileError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
        if not isinstance(data, dict) or data.get("format") not in (FORMAT, FORMAT_V1):
            got = data.get("format") if isinstance(data, dict) else None
            raise ModelFileError(f"{path} is not a trendcli ensemble (format {got!r}, expected {FORMAT!r})")
        try:
            members = [Member(str(m["path"]), str(m["id"]), str(m["weights_sha256"])) for m in data["members"]]
        except (KeyError, TypeError):
            raise ModelFileError(f"{path}: every member needs id, path and weights_sha256") from None
        if not isinstance(data.get("tie_break", "first"), str) or not isinstance(data.get("seed", 0), int):
            raise ModelFileError(f"{path}: tie_break must be a string and seed an integer")
        base = path.absolute().parent
        if data["format"] == FORMAT:
            members = [Member(str(_absolute(m.path, base)), m.id, m.weights_sha256) for m in members]
        else:
            members = [Member(str(resolve_member_path(m.path, path).absolute()), m.id, m.weights_sha256) for m in members]
        ens = cls(
            members,
            tie_break=data.get("tie_break", "first"),
            seed=int(data.get("seed", 0)),
            per_image=data.get("per_image"),
            design=data.get("design"),
            source=path,
        )
        if verify:
            ens.verify()
        return ens

    def verify(self) -> None:
        """Raise ModelFileError unless every member's model.json records the ensemble's sha256."""
        for member, model_dir in zip(self.members, self.member_dirs()):
            card = read_card(model_dir)
            if card.get("weights_sha256") != member.weights_sha256:
                raise ModelFileError(
                    f"member {member.id!r} ({model_dir}) has weights sha256 {str(card.get('weights_sha256'))[:12]}..., "
                    f"the ensemble recorded {member.weights_sha256[:12]}...; the model changed after the ensemble "
                    f"was designed -- design it again or restore the model"
                )

    # -- inference ---------------------------------------------------------------------------
    def models(self, device: str | torch.device = "cpu", per_image: bool | None = None) -> list[torch.nn.Module]:
        """The members as eval-mode TrendModels (weights checked against model.json).

        ``per_image`` (or else the ensemble's own setting) overrides the input quantizer's form.
        """
        form = self.per_image if per_image is None else per_image
        models = []
        for member, model_dir in zip(self.members, self.member_dirs()):
            model = load_model(model_dir, device=device, per_image=form)
            if model.meta.get("weights_sha256") != member.weights_sha256:
                raise ModelFileError(f"member {member.id!r} ({model_dir}) no longer has the weights the ensemble recorded")
            model.meta["ensemble_id"] = member.id
            models.append(model)
        return models

    def logits(self, x: torch.Tensor, models: Sequence[torch.nn.Module] | None = None) -> list[torch.Tensor]:
        """Each member's logits [N, classes] for ``x`` in [0, 1], under inference mode, on the CPU."""
        members = list(models) if models is not None else self.models()
        out = []
        with torch.inference_mode():
            for model in members:
                device = next(model.parameters()).device
                out.append(model(x.to(device)).float().cpu())
        return out

    def predict(
        self, x: torch.Tensor, models: Sequence[torch.nn.Module] | None = None, tie_break: str | None = None
    ) -> torch.Tensor:
        """The ensemble's vote [N] for ``x``, with its tie-break policy (or ``tie_break``) and seed."""
        return vote_logits(self.logits(x, models), tie_break or self.tie_break, self.seed)


def vote_logits(logits: Sequence[torch.Tensor], tie_break: str = "first", seed: int = 0) -> torch.Tensor:
    """The majority vote of members' logits with a tie-break policy (trendcli.ensemble.vote.predict)."""
    from trendcli.ensemble.vote import predict

    return predict(list(logits), tie_break=check_tie_break(tie_break), seed=seed)


def _absolute(path: str, base: Path) -> Path:
    p = Path(path)
    return p if p.is_absolute() else Path(os.path.normpath(base / p))


def resolve_member_path(path: str, ensemble_file: Path | None) -> Path:
    """A member path of a /1 ensemble file: absolute as is; relative to the working directory if it
    is there, else relative to the ensemble file's directory. /2 files store paths relative to the
    file, and ``Ensemble.load`` makes them absolute."""
    p = Path(path)
    if p.is_absolute() or p.exists() or ensemble_file is None:
        return p
    beside = Path(ensemble_file).parent / p
    return beside if beside.exists() else p
