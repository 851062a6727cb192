"""Build minswin's static website into site/: `make site`.

    python scripts/make_site.py [--out DIR] [--fresh] [TUTORIAL ...]

The tutorials are the executed notebooks: tutorials/NN_topic.ipynb where `make notebooks`
wrote it and it is newer than its script, otherwise (or with --fresh) the tutorial is executed
first, as `make notebooks` does (a few minutes for all of them). Pages: a landing page, one
per tutorial, the exercises, the API (from docstrings) and the window-and-mask explorer (its
numbers computed by minswin now). The site works offline: open site/index.html in a
browser. See scripts/website/build.py.
"""
import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv=None):
    p = argparse.ArgumentParser(prog="make_site.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=os.path.join(ROOT, "site"),
                   help="the folder of the site (default: site/ in the repository)")
    p.add_argument("--fresh", action="store_true",
                   help="execute every tutorial again, even where its notebook is up to date "
                        "(after a change to minswin itself)")
    p.add_argument("tutorials", nargs="*", metavar="TUTORIAL",
                   help="tutorial scripts to include (default: every tutorials/NN_*.py)")
    args = p.parse_args(argv)
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    os.environ.setdefault("MPLBACKEND", "Agg")
    try:
        import nbconvert  # noqa: F401
    except ImportError:
        print("make_site.py: the site needs nbconvert (pip install -e '.[site]')",
              file=sys.stderr)
        return 2
    from website.build import (
        build_site,
        check_out_folder,
        executed_notebook,
        site_size,
        tutorial_scripts,
    )
    scripts = args.tutorials or tutorial_scripts()
    for s in scripts:
        if not os.path.isfile(s):
            print(f"make_site.py: TUTORIAL: no such file {s!r}", file=sys.stderr)
            return 2
    try:
        check_out_folder(args.out)
    except ValueError as err:
        print(f"make_site.py: {err}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    notebooks = [(s, executed_notebook(s, fresh=args.fresh)) for s in scripts]
    build_site(args.out, notebooks)
    files, size = site_size(args.out)
    print(f"minswin: site in {os.path.relpath(args.out)}: {files} files, {size / 1e6:.1f} MB, "
          f"{time.perf_counter() - t0:.0f} s; open {os.path.relpath(args.out)}/index.html")
    return 0


if __name__ == "__main__":
    sys.exit(main())
