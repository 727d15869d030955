"""The ``tal-lab`` command line."""

from tal_lab.cli.main import main

__all__ = ["main"]
