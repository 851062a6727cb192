"""`minswin train` (not written yet)."""


def add_parser(sub):
    p = sub.add_parser("train", help="(not written yet)")
    p.set_defaults(func=run)


def run(args):
    from . import CliError
    raise CliError("'train' is not implemented yet")
