"""`show(fig, name)`: a figure inline in a notebook, and as a named PNG file everywhere.

The tutorials are jupytext scripts that also run as notebooks. Each figure they draw goes
through `show`, which writes it once as a PNG into the figures folder, prints where, and, when
the code runs in a Jupyter kernel, displays those same PNG bytes right under the cell. Figures
are bare `matplotlib.figure.Figure`s (no pyplot), so nothing else is shown: no stray empty
figures, no second copy from the inline backend.

The folder is `$MINSWIN_FIGURES`, or `./minswin-figures/tutorials` under the current directory.
"""
import io
import os

from ..atomic import write_atomically

DEFAULT_FOLDER = os.path.join("minswin-figures", "tutorials")


def figures_folder():
    """Where figures go: `$MINSWIN_FIGURES` or ./minswin-figures/tutorials (created)."""
    folder = os.path.abspath(os.environ.get("MINSWIN_FIGURES") or DEFAULT_FOLDER)
    os.makedirs(folder, exist_ok=True)
    return folder


def in_notebook():
    """True inside a Jupyter kernel (where `display` shows images), False in a script."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def show(fig, name, dpi=100):
    """Write `fig` as `name` (.png) into figures_folder(), say where, and display it inline
    when running in a notebook. Returns the path."""
    if not str(name).lower().endswith(".png"):
        raise ValueError(f"name: expected a file name ending in .png, got {name!r}")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    png = buf.getvalue()
    path = os.path.join(figures_folder(), os.path.basename(name))

    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(png)
    write_atomically(path, write)
    print(f"figure {os.path.basename(name)} -> {path}")
    if in_notebook():
        from IPython.display import Image, display
        display(Image(data=png, format="png"))
    return FigurePath(path)


class FigurePath(str):
    """The path `show` returns: a plain str, which a notebook does not echo as the cell's
    value (the line printed above already says where the file went)."""

    def _ipython_display_(self):
        pass
