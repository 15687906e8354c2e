"""`python -m trendcli.cli`: the `trend` command."""

from trendcli.cli import main

main()
