"""`minswin evaluate` (not written yet)."""


def add_parser(sub):
    p = sub.add_parser("evaluate", help="(not written yet)")
    p.set_defaults(func=run)


def run(args):
    from . import CliError
    raise CliError("'evaluate' is not implemented yet")
