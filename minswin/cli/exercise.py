"""`minswin exercise` (not written yet)."""


def add_parser(sub):
    p = sub.add_parser("exercise", help="(not written yet)")
    p.set_defaults(func=run)


def run(args):
    from . import CliError
    raise CliError("'exercise' is not implemented yet")
