"""`minswin tour`: Swin-T end to end on a real photo, then every figure into a folder."""
import argparse

from .errors import CliError


def add_parser(sub):
    p = sub.add_parser(
        "tour", help="Swin-T end to end: shapes, windows, masks, costs, and every figure",
        description="Build Swin-T, push a real 224x224 photo through the whole network and "
                    "print what happens (shapes, windows and masks per stage, parameters, "
                    "FLOPs, MSA vs W-MSA), then draw every figure into a folder.",
        epilog="examples:\n  minswin tour\n  minswin tour --out /tmp/figs\n"
               "  minswin tour --no-progress > tour.txt",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", metavar="DIR", default="minswin-figures",
                   help="folder for the figures (default ./minswin-figures/, created)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    p.set_defaults(func=run)
    return p


def run(args):
    import os

    from ..tour import run_tour
    if not args.out.strip():
        raise CliError(f"--out: expected a folder name, got {args.out!r}")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise CliError(f"--out: {args.out} exists and is not a folder")
    above = os.path.dirname(os.path.abspath(args.out))
    while not os.path.exists(above):                       # the nearest part that exists
        above = os.path.dirname(above)
    if not os.path.isdir(above):
        raise CliError(f"--out: cannot make {args.out}: {above} is a file, not a folder")
    run_tour(args.out, progress=not args.no_progress)
    return 0
