"""Every tutorial runs as a plain script: headless, in small mode, figures in a temp dir.

Tutorials end with `assert`s that pin their worked numbers, so exit code 0 means the numbers
still come out of minswin's code. Tutorials are found by glob: a new one is tested too.
"""
import glob
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TUTORIALS = sorted(glob.glob(os.path.join(ROOT, "tutorials", "[0-9][0-9]_*.py")))
SLOW = {"10_train_a_small_swin.py"}      # trains for a few seconds; left out by -m "not slow"


def test_tutorials_exist():
    assert len(TUTORIALS) >= 9, TUTORIALS
    names = {os.path.basename(p) for p in TUTORIALS}
    assert SLOW <= names, SLOW - names                     # a renamed tutorial keeps its mark


@pytest.mark.parametrize("path", [
    pytest.param(p, id=os.path.basename(p),
                 marks=[pytest.mark.slow] if os.path.basename(p) in SLOW else [])
    for p in TUTORIALS])
def test_tutorial_runs(path, tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg", MINSWIN_SMALL="1",
               MINSWIN_FIGURES=str(tmp_path / "figures"))
    env.pop("MINSWIN_EXERCISE_SOLUTION", None)
    proc = subprocess.run([sys.executable, path], cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (f"{os.path.basename(path)} exited with {proc.returncode}\n"
                                  f"--- stdout (tail)\n{proc.stdout[-3000:]}\n"
                                  f"--- stderr (tail)\n{proc.stderr[-3000:]}")


def test_tutorials_have_no_outputs_and_a_questions_section():
    for path in TUTORIALS:
        text = open(path, encoding="utf-8").read()
        name = os.path.basename(path)
        assert "# %% [markdown]" in text and "\n# %%\n" in text, name
        assert "plt.show(" not in text, name
        if name[:2] <= "09":                       # the tutorials of issue 5
            assert "## Questions" in text and "\nassert " in text, name
