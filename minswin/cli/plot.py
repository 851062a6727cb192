"""`minswin plot` (not written yet)."""


def add_parser(sub):
    p = sub.add_parser("plot", help="(not written yet)")
    p.set_defaults(func=run)


def run(args):
    from . import CliError
    raise CliError("'plot' is not implemented yet")
