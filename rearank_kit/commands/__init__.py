"""Subcommands of ``rearank-kit``; see ``rearank_kit/cli.py`` for the contract each module follows."""
