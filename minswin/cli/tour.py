"""`minswin tour` (not written yet)."""


def add_parser(sub):
    p = sub.add_parser("tour", help="(not written yet)")
    p.set_defaults(func=run)


def run(args):
    from . import CliError
    raise CliError("'tour' is not implemented yet")
