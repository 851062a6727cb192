"""Every tutorial runs as a notebook, through a real Jupyter kernel, headless and in small mode.

Each tutorial (a jupytext percent script) is converted with jupytext and executed with nbclient,
as a learner who opens it in Jupyter would run it. The test asserts that no cell errored, that
each figure the tutorial draws appears inline exactly once (the count of `image/png` outputs),
and that the tutorial's own `assert`s ran: they pin its worked numbers and end by printing
"tutorial N: all checks passed". Tutorials are found by glob: a new one is tested too, and
must be given its figure count here.
"""
import glob
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TUTORIALS = sorted(glob.glob(os.path.join(ROOT, "tutorials", "[0-9][0-9]_*.py")))
ANSI = re.compile(r"\x1b\[[0-9;]*m")        # the colours of an IPython traceback
SLOW = {"10_train_a_small_swin.py"}      # trains for a few seconds; left out by -m "not slow"
# inline figures per notebook (in small mode, MINSWIN_SMALL=1)
FIGURES = {
    "01_from_vit_to_swin.py": 1,
    "02_patch_embedding.py": 1,
    "03_patch_merging.py": 1,
    "04_window_attention_cost.py": 1,
    "05_shifted_windows_and_mask.py": 3,
    "06_relative_position_bias.py": 3,
    "07_swin_block_backward.py": 1,
    "08_whole_model.py": 1,
    "09_numpy_and_cupy.py": 1,
    "10_train_a_small_swin.py": 4,
    "11_from_swin_to_swin_v2.py": 4,
    "12_swin_as_a_backbone.py": 3,
}


def test_tutorials_exist():
    assert len(TUTORIALS) >= 9, TUTORIALS
    names = {os.path.basename(p) for p in TUTORIALS}
    assert SLOW <= names, SLOW - names                     # a renamed tutorial keeps its mark


def _run_notebook(path, workdir):
    """Execute the tutorial at `path` as a notebook in `workdir`; returns the executed nb."""
    jupytext = pytest.importorskip("jupytext", reason="the test extra: pip install -e .[test]")
    nbclient = pytest.importorskip("nbclient", reason="the test extra: pip install -e .[test]")
    pytest.importorskip("ipykernel", reason="the test extra: pip install -e .[test]")
    nb = jupytext.read(path)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(workdir)}}).execute()
    return nb


def _outputs(nb):
    return [(cell, out) for cell in nb.cells if cell.cell_type == "code"
            for out in cell.get("outputs", [])]


@pytest.mark.parametrize("path", [
    pytest.param(p, id=os.path.basename(p),
                 marks=[pytest.mark.slow] if os.path.basename(p) in SLOW else [])
    for p in TUTORIALS])
def test_tutorial_runs_as_a_notebook(path, tmp_path, monkeypatch):
    name = os.path.basename(path)
    assert name in FIGURES, f"{name}: add its number of figures to FIGURES"
    for k, v in dict(MPLBACKEND="Agg", MINSWIN_SMALL="1",
                     MINSWIN_FIGURES=str(tmp_path / "figures")).items():
        monkeypatch.setenv(k, v)                           # the kernel inherits them
    nb = _run_notebook(path, tmp_path)
    outs = _outputs(nb)
    errors = [ANSI.sub("", "\n".join(o.traceback))[-2000:]
              for _, o in outs if o.output_type == "error"]
    assert not errors, f"{name}: " + "\n\n".join(errors)
    unrun = [c.source[:80] for c in nb.cells if c.cell_type == "code"
             and c.source.strip() and c.get("execution_count") is None]
    assert not unrun, f"{name}: cells that never ran: {unrun}"
    text = "".join(o.get("text", "") for _, o in outs if o.output_type == "stream")
    number = int(name[:2])
    assert f"tutorial {number}: all checks passed" in text, f"{name}: its asserts did not run"
    images = [o for _, o in outs if "image/png" in o.get("data", {})]
    assert len(images) == FIGURES[name], (f"{name}: {len(images)} inline figures, expected "
                                          f"{FIGURES[name]}")
    stray = [o["data"]["text/plain"] for _, o in outs if "image/png" not in o.get("data", {})
             and "Figure" in o.get("data", {}).get("text/plain", "")]
    assert not stray, f"{name}: figures shown as text instead of a picture: {stray}"
    files = sorted(os.listdir(tmp_path / "figures")) if images else []
    assert len(files) == len(images), f"{name}: files {files} vs {len(images)} inline figures"
    assert not any(o.get("name") == "stderr" and "Traceback" in o.get("text", "")
                   for _, o in outs), name


def test_tutorials_have_no_outputs_and_a_questions_section():
    for path in TUTORIALS:
        text = open(path, encoding="utf-8").read()
        name = os.path.basename(path)
        assert "# %% [markdown]" in text and "\n# %%\n" in text, name
        for drawing_elsewhere in ("plt.show(", "savefig(", "save_figure("):   # show() does it
            assert drawing_elsewhere not in text, (name, drawing_elsewhere)
        assert "tempfile.mkdtemp(prefix=\"minswin-figures" not in text, name
        if name[:2] <= "09":                       # the tutorials of issue 5
            assert "## Questions" in text and "\nassert " in text, name
