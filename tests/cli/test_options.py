"""Shared options: one type and one help text per option, whichever command uses it; number parsing."""

from __future__ import annotations

import typing

import pytest
import typer

from trendcli.cli import options as ao
from trendcli.cli.app import app
from trendcli.cli.options import attack_params, parse_list, parse_names, parse_number
from trendcli.errors import UsageError


def shared_help() -> dict[str, set[str]]:
    """Option flag -> its help texts (--eps: one value or a list), for the option types in cli/options.py."""
    out: dict[str, set[str]] = {}
    for value in vars(ao).values():
        if typing.get_origin(value) is typing.Annotated:
            info = typing.get_args(value)[1]
            # inside Annotated, Typer reads the first positional argument of Option() as its flags
            decls = [info.default, *info.param_decls] if isinstance(info.default, str) else list(info.param_decls)
            for flag in (f for d in decls for f in d.split("/")):
                out.setdefault(flag, set()).add(info.help)
    return out


def command_options(name: str) -> dict[str, str]:
    group = typer.main.get_command(app)
    root = group.context_class(group, info_name="trend")
    command = group.get_command(root, name)
    return {flag: p.help for p in command.params for flag in [*p.opts, *p.secondary_opts] if flag.startswith("--")}


@pytest.mark.parametrize("command", ["attack", "matrix", "sweep", "evaluate"])
def test_attack_commands_share_the_option_types(command):
    shared = shared_help()
    options = command_options(command)
    for flag in ("--eps", "--alpha", "--steps", "--random-start", "--seed", "--store", "--limit", "--batch-size",
                 "--device", "--split", "--data-dir", "--force", "--json"):
        assert flag in options, f"trend {command} has no {flag}"
    for flag, text in options.items():
        # `attack --method` also takes ensemble rules, `evaluate --attack` only those: their own options;
        # `--model` is the attacked model in attack and matrix, a member (MemberDirs) in evaluate and export
        own = {("attack", "--method"), ("evaluate", "--attack"), ("attack", "--model"), ("matrix", "--model")}
        if flag in shared and (command, flag) not in own:
            assert text in shared[flag], f"trend {command} {flag} re-declares the shared option"


def test_the_single_model_attack_options_are_the_same_in_attack_matrix_and_sweep():
    flags = ["--restarts", "--kappa", "--c", "--lr", "--binary-steps", "--norm", "--overshoot", "--max-iter"]
    helps = [[command_options(c)[f] for f in flags] for c in ("attack", "matrix", "sweep")]
    assert helps[0] == helps[1] == helps[2]


def test_numbers_and_fractions():
    assert parse_number("8/255", "--eps") == 8 / 255
    assert parse_number(" 0.25 ", "--eps") == 0.25
    assert parse_list("2/255, 4/255,", "--eps") == [2 / 255, 4 / 255]
    with pytest.raises(UsageError, match=r"--eps must be a number or a fraction like 8/255, got '1/0'"):
        parse_number("1/0", "--eps")
    with pytest.raises(UsageError, match="--alpha must be finite"):
        parse_number("inf", "--alpha")


def test_names_and_attack_params():
    assert parse_names(["a,b", " c ", ""]) == ["a", "b", "c"]
    # only the options that were given reach the attack
    assert attack_params(eps="8/255", steps=10, random_start=False) == {"eps": 8 / 255, "steps": 10, "random_start": False}
    assert attack_params() == {}
