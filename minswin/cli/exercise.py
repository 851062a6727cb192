"""`minswin exercise`: list the gradient-check exercises, start one, check your answer.

    minswin exercise list
    minswin exercise start layernorm_backward [DIR]     copies ex_layernorm_backward.py
    minswin exercise check layernorm_backward ex_layernorm_backward.py
    minswin exercise check layernorm_backward ex_layernorm_backward.py --hint 2
    minswin exercise check layernorm_backward ex_layernorm_backward.py --reveal

A failing check gives one hint, in levels: first a question naming the forward line or path
to look at; `--hint 2` names the term; only `--reveal` shows the formula.

`check` exits with 0 only when every gradient of every case passes; a learner's exception is
shown as a traceback with a verdict, never as a crash of the command. The learner's file runs
in a child process with a time limit (`--timeout`); the verdict is computed here.
"""
from .errors import CliError


def add_parser(sub):
    p = sub.add_parser("exercise", help="gradient-check exercises: list, start, check",
                       description="Write a backward pass by hand; the grader compares it "
                                   "with central differences and with minswin's own.")
    act = p.add_subparsers(dest="action", metavar="ACTION")
    act.required = True
    act.add_parser("list", help="the exercises and the function each one asks for")
    s = act.add_parser("start", help="copy an exercise's skeleton into a directory")
    s.add_argument("name", metavar="NAME", help="exercise name (see `minswin exercise list`)")
    s.add_argument("dir", nargs="?", default=".", metavar="DIR",
                   help="where to put it (default: here)")
    c = act.add_parser("check", help="grade your file; exit code 0 only if all checks pass")
    c.add_argument("name", metavar="NAME", help="exercise name")
    c.add_argument("file", metavar="FILE", help="your ex_<name>.py")
    c.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help="time limit for running your file (default: 30; every exercise "
                        "grades in about a second)")
    c.add_argument("--hint", default="1", metavar="LEVEL",
                   help="how much the hint says: 1 a question (default), 2 the term")
    c.add_argument("--reveal", action="store_true",
                   help="show the formula of the mistake in the hint (the answer)")
    c.add_argument("--memory", default=None, metavar="SIZE",
                   help="memory your file may use, e.g. 512M or 2G (default: a quarter of "
                        "this machine's memory)")
    p.set_defaults(func=run)


def run(args):
    import os

    from ..exercises import EXERCISES, get_exercise, grade_file, start
    from ..exercises.grader import DEFAULT_TIMEOUT, check_timeout

    if args.action == "list":
        w = max(len(n) for n in EXERCISES)
        print(f"{'exercise':<{w}}  you write")
        for name, ex in EXERCISES.items():
            print(f"{name:<{w}}  {ex.function}(dout, cache): {ex.summary}")
        print("\nstart one with `minswin exercise start NAME [DIR]`, then "
              "`minswin exercise check NAME FILE`")
        return 0
    ex = get_exercise(args.name)                          # ValueError: one line, exit 2
    if args.action == "start":
        if os.path.exists(args.dir) and not os.path.isdir(args.dir):
            raise CliError(f"DIR: expected a directory, got the file {args.dir!r}")
        os.makedirs(args.dir, exist_ok=True)
        dest = start(ex.name, args.dir)                   # FileExistsError: one line, exit 2
        print(f"wrote {dest}\nfill in {ex.function}, then run:\n"
              f"  minswin exercise check {ex.name} {dest}")
        return 0
    # check
    timeout = DEFAULT_TIMEOUT if args.timeout is None else args.timeout
    try:
        check_timeout(timeout)
    except ValueError:
        raise CliError(f"--timeout: expected a number of seconds > 0, got {args.timeout:g}") \
            from None
    memory = None if args.memory is None else parse_size("--memory", args.memory)
    if os.path.isdir(args.file):
        raise CliError(f"FILE: expected your ex_{ex.name}.py, got the folder {args.file!r}")
    if not os.path.isfile(args.file):
        raise CliError(f"FILE: no such file {args.file!r} (start one with `minswin exercise "
                       f"start {ex.name}`)")
    if args.hint not in ("1", "2"):
        raise CliError(f"--hint: expected 1 (a question) or 2 (the term; the formula is "
                       f"--reveal), got {args.hint!r}")
    level = 3 if args.reveal else int(args.hint)
    return grade_file(ex, args.file, timeout=timeout, hint=level, memory=memory).exit_code


_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(flag, text):
    """'512M', '2G', '1.5GiB', '1000000' -> bytes (K, M, G, T are powers of 1024)."""
    import math
    import re

    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][0-9]+)?)\s*([KMGT]?)(?:i?B)?\s*", text,
                     re.IGNORECASE)
    value = float(m.group(1)) * _UNITS[m.group(2).upper()] if m else float("nan")
    if not math.isfinite(value) or value < 1 or value >= 2 ** 63:
        raise CliError(f"{flag}: expected a size such as 512M or 2G (at least 1 byte, less "
                       f"than 8 EiB), got {text!r}")
    return int(value)
