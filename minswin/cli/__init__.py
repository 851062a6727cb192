"""The `minswin` command: one sub-command per module in this package.

Each sub-command module exposes `add_parser(subparsers)` (which registers its parser and sets
`func`) so that this file stays a short table of contents.

Errors are one line on stderr, never a traceback: bad input exits with 2 (`minswin CMD:
error: ...`), a run that started and failed with 1, Ctrl-C with 130, a closed pipe (`minswin
evaluate | head -2`) quietly with 141 (128 + SIGPIPE, as a shell tool killed by it).
`--debug` (anywhere on the line) or MINSWIN_DEBUG=1 shows the traceback as well.

Every parser is a `parser.Parser` (argparse's errors in one line, defaults in --help); a
message from the library that names a Python parameter is rewritten to name the flag as the
user typed it (`parser.name_the_flag`; a command maps its parameter names to its options
with `set_defaults(param_flags={...})`).
"""
import os
import sys
import traceback

from ..runtime import prefer_sleeping_blas_threads, tune_cpu_process

BLAS_TIMEOUT_IN_TIME = prefer_sleeping_blas_threads()   # before the commands import NumPy:
                                                        # see minswin/runtime.py

from . import evaluate, exercise, plot, tour, train, tune  # noqa: E402
from .errors import CliError  # noqa: E402  (defined there; `from minswin.cli import CliError` works)
from .parser import Parser, name_the_flag  # noqa: E402

COMMANDS = (tour, plot, train, evaluate, exercise, tune)


def build_parser():
    parser = Parser(
        prog="minswin",
        description="The Swin Transformer in NumPy/CuPy, every backward by hand.",
        epilog="Examples:\n  minswin tour\n  minswin plot mask -o mask.png\n"
               "  minswin train\n  minswin exercise list",
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


def _closed_pipe():
    """The reader of stdout has gone: say nothing more. stdout goes to /dev/null so the
    interpreter's final flush cannot raise again ("Exception ignored ... BrokenPipeError")."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 141


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("MINSWIN_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    parser = build_parser()
    try:
        args = parser.parse_args(argv)     # bad options: one line, exit 2 (parser.Parser)
    except BrokenPipeError:                # --help into a closed pipe
        return _closed_pipe()
    tune_cpu_process()                 # reuse freed memory: see minswin/runtime.py
    name = f"minswin {args.command}"
    try:
        rc = args.func(args) or 0
        sys.stdout.flush()                 # a closed pipe is found here, not at exit
        return rc
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:                # `minswin evaluate | head -2`: the reader left
        return _closed_pipe()
    except MemoryError as err:             # past the estimates (minswin/memory.py): say so
        if debug:
            traceback.print_exc()
        print(f"{name}: error: out of memory ({_message(err)}); the estimate said it would "
              "fit, so other programs may be using the memory: try a smaller --batch-size "
              "or model", file=sys.stderr)
        return 1
    except Exception as err:
        if debug:
            traceback.print_exc()
        if isinstance(err, BAD_INPUT):
            message = name_the_flag(_message(err), parser, argv,
                                    getattr(args, "param_flags", None))
            print(f"{name}: error: {' '.join(message.split())}", file=sys.stderr)
            return 2
        print(f"{name}: error: unexpected {type(err).__name__}: {_message(err)} (a bug in "
              "minswin; run again with --debug for the traceback and report it)",
              file=sys.stderr)
        return 1
