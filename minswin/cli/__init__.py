"""The `minswin` command: one sub-command per module in this package.

Each sub-command module exposes `add_parser(subparsers)` (which registers its parser and sets
`func`) so that this file stays a short table of contents.
"""
import argparse
import sys

from ..runtime import tune_cpu_process
from . import evaluate, exercise, plot, tour, train

COMMANDS = (tour, plot, train, evaluate, exercise)


class CliError(Exception):
    """A bad option or an impossible request: printed as one line on stderr, exit code 2."""


def build_parser():
    parser = argparse.ArgumentParser(
        prog="minswin",
        description="The Swin Transformer in NumPy/CuPy, every backward by hand.",
        epilog="Examples:\n  minswin tour\n  minswin plot mask -o mask.png\n"
               "  minswin train\n  minswin exercise list",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from .. import __version__
    parser.add_argument("--version", action="version", version=f"minswin {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    tune_cpu_process()                 # reuse freed memory: see minswin/runtime.py
    try:
        return args.func(args) or 0
    except (CliError, ValueError, TypeError, OSError, ImportError) as err:
        print(f"minswin {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"minswin {args.command}: interrupted", file=sys.stderr)
        return 130
