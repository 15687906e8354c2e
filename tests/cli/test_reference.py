"""docs/cli.md is generated from the app and kept current."""

from __future__ import annotations

from trendcli.cli.app import COMMANDS
from trendcli.cli.reference import DOC, REGENERATE, render_reference


def test_docs_cli_md_is_current():
    assert DOC.exists(), f"{DOC} is missing; generate it with: {REGENERATE}"
    assert DOC.read_text(encoding="utf-8") == render_reference(), f"{DOC} is stale; regenerate it with: {REGENERATE}"


def test_reference_has_every_command_and_its_options():
    text = render_reference()
    for name, _, _ in COMMANDS:
        assert f"\n## trend {name}\n" in text
    train = text.split("\n## trend train\n", 1)[1].split("\n## ", 1)[0]
    assert "| `--out <path>` |" in train and "[required]" in train and "[default: smallcnn]" in train
