"""Execute every tutorial as a notebook and write it, outputs and figures included.

    make notebooks                      # or: python scripts/make_notebooks.py [TUTORIAL ...]

Each `tutorials/NN_topic.py` (a jupytext percent script) is converted with jupytext, run
through a Jupyter kernel with nbclient (the way tests/test_tutorials.py runs it), and written
as `tutorials/NN_topic.ipynb` (git-ignored) for people who only want to read. Open them in VS
Code, or with `pip install jupyterlab && jupyter lab tutorials/`. Figures are also written as
PNG files to $MINSWIN_FIGURES (default ./minswin-figures/tutorials).
"""
import glob
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_notebook(script, workdir):
    """Execute the percent script `script` as a notebook in `workdir`; return the notebook."""
    import subprocess

    import jupytext
    import nbclient
    nb = jupytext.read(script)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    client = nbclient.NotebookClient(nb, timeout=1200, kernel_name="python3",
                                     resources={"metadata": {"path": workdir}})
    # the kernel's own log (a warning about TCP on localhost) is noise here; what a cell
    # prints or raises comes back through the notebook, not through this stream
    client.execute(stderr=subprocess.DEVNULL)
    return nb


def main(argv):
    import jupytext
    scripts = argv or sorted(glob.glob(os.path.join(ROOT, "tutorials", "[0-9][0-9]_*.py")))
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("MINSWIN_FIGURES", os.path.join(os.getcwd(), "minswin-figures",
                                                          "tutorials"))
    for script in scripts:
        t0 = time.perf_counter()
        out = os.path.splitext(script)[0] + ".ipynb"
        try:
            nb = run_notebook(script, os.getcwd())
        except Exception as err:            # nbclient's CellExecutionError names the cell
            print(f"minswin: {os.path.relpath(script)} failed:\n{err}", file=sys.stderr)
            return 1
        jupytext.write(nb, out)
        images = sum("image/png" in o.get("data", {}) for c in nb.cells
                     for o in c.get("outputs", []))
        figures = f"{images} figure{'' if images == 1 else 's'}"
        print(f"minswin: wrote {os.path.relpath(out)} ({figures}, "
              f"{time.perf_counter() - t0:.0f} s)")
    print(f"figures also in {os.environ['MINSWIN_FIGURES']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
