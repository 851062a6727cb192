"""The `minswin` command: one sub-command per module in this package.

Each sub-command module exposes `add_parser(subparsers)` (which registers its parser and sets
`func`) so that this file stays a short table of contents.

Errors are one line on stderr, never a traceback: bad input exits with 2 (`minswin CMD:
error: ...`), a run that started and failed with 1, Ctrl-C with 130. `--debug` (anywhere on
the line) or MINSWIN_DEBUG=1 shows the traceback as well.
"""
import argparse
import os
import sys
import traceback

from ..runtime import prefer_sleeping_blas_threads, tune_cpu_process

BLAS_TIMEOUT_IN_TIME = prefer_sleeping_blas_threads()   # before the commands import NumPy:
                                                        # see minswin/runtime.py

from . import evaluate, exercise, plot, tour, train  # noqa: E402

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
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error (also: MINSWIN_DEBUG=1); may "
                             "come anywhere on the line")
    from .. import __version__
    parser.add_argument("--version", action="version", version=f"minswin {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


# what bad input (or a machine that cannot do what was asked, e.g. CuPy without a GPU)
# raises: the message names the argument, what was expected and what came
BAD_INPUT = (CliError, ValueError, TypeError, OSError, ImportError, RuntimeError)


def _message(err):
    """An exception's message (a KeyError's without the quotes repr adds), with every
    terminal-steering character escaped: what a file holds cannot rewrite the screen."""
    from ..checks import escape_controls
    if isinstance(err, KeyError) and err.args:
        return escape_controls(str(err.args[0]))
    return escape_controls(str(err) or type(err).__name__)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("MINSWIN_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    parser = build_parser()
    args = parser.parse_args(argv)
    tune_cpu_process()                 # reuse freed memory: see minswin/runtime.py
    name = f"minswin {args.command}"
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if debug:
            traceback.print_exc()
        if isinstance(err, BAD_INPUT):
            print(f"{name}: error: {_message(err)}", file=sys.stderr)
            return 2
        print(f"{name}: error: unexpected {type(err).__name__}: {_message(err)} (a bug in "
              "minswin; run again with --debug for the traceback and report it)",
              file=sys.stderr)
        return 1
