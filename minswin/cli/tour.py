"""`minswin tour`: Swin-T end to end on a real photo, then every figure into a folder."""
import argparse


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
    from . import CliError
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise CliError(f"--out: {args.out} exists and is not a folder")
    run_tour(args.out, progress=not args.no_progress)
    return 0
