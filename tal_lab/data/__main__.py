"""``python -m tal_lab.data validate PATH`` / ``python -m tal_lab.data synth OUT``."""

from __future__ import annotations

import argparse
import sys

from tal_lab.data.commands import add_data_commands


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tal_lab.data", description="tal_lab dataset tools")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_data_commands(subparsers)
    # Accept both "python -m tal_lab.data validate ..." and "... data validate ...".
    args_in = list(sys.argv[1:] if argv is None else argv)
    if not args_in or args_in[0] != "data":
        args_in = ["data", *args_in]
    args = parser.parse_args(args_in)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
