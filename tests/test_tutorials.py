"""Every tutorial runs as a notebook, through a real Jupyter kernel, headless and in small mode.

Each tutorial (a jupytext percent script) is converted with jupytext and executed with nbclient,
as a learner who opens it in Jupyter would run it. The test asserts that no cell errored, that
each figure the tutorial draws appears inline exactly once (the count of `image/png` outputs),
and that the tutorial's own `assert`s ran: they pin its worked numbers and end by printing
"tutorial N: all checks passed". Tutorials are found by glob: a new one is tested too, and
must be given its figure count here.

The same run checks the prose: every number in a markdown cell must be printed by the
notebook (in any cell's output, in small mode), or written in a code cell right next to it
(an input it sets, or an assert that pins it), or be a quoted fact listed in QUOTED with its
source. A number typed by hand into a sentence cannot drift from the run unnoticed.
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
    "05_shifted_windows_and_mask.py": 4,
    "06_relative_position_bias.py": 3,
    "07_swin_block_backward.py": 1,
    "08_whole_model.py": 1,
    "09_numpy_and_cupy.py": 1,
    "10_train_a_small_swin.py": 4,
    "11_from_swin_to_swin_v2.py": 4,
    "12_swin_as_a_backbone.py": 3,
}


# Quoted facts: numbers a tutorial may state that no cell prints, each with its source.
# {tutorial file: {number as written: source}}; "*" applies to every tutorial.
QUOTED = {
    "*": {},
    "06_relative_position_bias.py": {
        "384": "the Swin paper's fine-tuning resolution (Liu et al. 2021, Table 1: Swin-B "
               "384^2, window 12); minswin.configs.swin_b_384 has img_size 384, window_size 12"},
    "08_whole_model.py": {
        "384": "the Swin paper's fine-tuning resolution (Liu et al. 2021, Table 1: Swin-B "
               "384^2, window 12); minswin.configs.swin_b_384 has img_size 384, window_size 12",
        "12": "the window of the 384-px models (Liu et al. 2021; minswin.configs.swin_b_384)"},
    "09_numpy_and_cupy.py": {
        "12.1": "CuPy's release notes: ufunc.at (so cupy.add.at) dispatches from v12.1.0 on "
                "(cupy/cupy#7561); minswin.backend.index_add relies on it"},
    "11_from_swin_to_swin_v2.py": {
        "2022": "Liu et al., Swin Transformer V2: Scaling Up Capacity and Resolution, CVPR "
                "2022 (arXiv:2111.09883)"},
    "01_from_vit_to_swin.py": {
        "9": "the official mask code cuts each axis of a shifted map into 3 bands, 3 x 3 "
             "regions; tutorial 5 prints and asserts the nine labels"},
}

# What is not a stated number: names of parts of the course or of a model ("# 9." as a title,
# "tutorial 8",
# "stage 4", "issue microsoft/Swin-Transformer#38"), digits inside identifiers (float64, V2,
# x0, 2M) and web addresses.
_URL = re.compile(r"https?://\S+|\]\([^)]*\)")
_NAMES = re.compile(r"(?m)^#+ +\d+\.|"
                    r"\b(?:[Tt]utorials?|[Ss]ections?|[Ss]tages?|[Ss]teps?|[Ff]igures?|"
                    r"[Qq]uestions?|[Ee]xercises?|[Pp]arts?|[Ll]evels?)\s+\d+"
                    r"(?:\s*(?:,|and|or|to|-|–)\s*\d+)*|[\w./-]*#\d+(?:\s*,\s*#\d+)*")
_TIMES = re.compile(r"(\d)\s*[x×]\s*(?=\d)")         # 7×7, 4x4x3: three numbers
_NUMBER = re.compile(r"(?<![\w.])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:e[-+]?\d+)?(?![\w])")


def _numbers(text):
    """The numbers written in a text, as strings ("28,288,354", "0.43", "1e-15")."""
    return _NUMBER.findall(_TIMES.sub(r"\1 ", text))


def _prose_numbers(text):
    return _numbers(_NAMES.sub(" ", _URL.sub(" ", text)))


def _value(token):
    return float(token.replace(",", ""))


def _is_backed(token, values):
    """True if one of `values` is `token` at the precision it is written with (0.43 is backed
    by a printed 0.4312, 59 by 59.2, 1e-15 by 1.3e-15)."""
    mantissa, _, exp = token.partition("e")
    places = len(mantissa.split(".")[1]) if "." in mantissa else 0
    scale = 10.0 ** int(exp) if exp else 1.0
    target = round(_value(token) / scale, places)
    return any(round(v / scale, places) == target for v in values)


def _output_text(cell):
    return "\n".join(o.get("text", "") + o.get("data", {}).get("text/plain", "")
                      for o in cell.get("outputs", []))


def unbacked_numbers(nb, name):
    """[(cell index, number, context)] for every number of a markdown cell that is neither
    printed by the notebook, nor written in a neighbouring code cell, nor quoted in QUOTED."""
    printed = [_value(t) for c in nb.cells if c.cell_type == "code"
               for t in _numbers(_output_text(c))]
    quoted = {**QUOTED["*"], **QUOTED.get(name, {})}
    bad = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        beside = [_value(t) for j in (i - 1, i + 1) if 0 <= j < len(nb.cells)
                  and nb.cells[j].cell_type == "code" for t in _numbers(nb.cells[j].source)]
        for t in _prose_numbers(cell.source):
            if t in quoted or _is_backed(t, printed) or _is_backed(t, beside):
                continue
            k = cell.source.find(t)
            bad.append((i, t, " ".join(cell.source[max(0, k - 50):k + 30].split())))
    return bad


def _notebook(*cells):
    """A tiny executed notebook: ("md", text) and ("code", source, printed) cells."""
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.v4.new_notebook()
    for kind, source, *out in cells:
        if kind == "md":
            nb.cells.append(nbformat.v4.new_markdown_cell(source))
        else:
            c = nbformat.v4.new_code_cell(source)
            c.outputs = [nbformat.v4.new_output("stream", name="stdout", text=out[0])]
            nb.cells.append(c)
    return nb


def test_prose_numbers_must_come_from_the_run():
    """The checker itself, without a kernel: what it accepts and what it flags."""
    ok = _notebook(("code", "x = 1", "validation accuracy 59.2%, weights up to 0.4312\n"),
                   ("md", "The run above reached 59% and its weights reach 0.43 (stage 4, "
                          "tutorial 10, microsoft/Swin-Transformer#38, float64)."),
                   ("code", "assert n == 169", ""),
                   ("md", "Every float64 sum agreed to 1e-15 ... no: 3e-16."),
                   ("code", "", "gap 2.9e-16\n"))
    assert unbacked_numbers(ok, "x.py") == [(3, "1e-15", "Every float64 sum agreed to 1e-15 "
                                                          "... no: 3e-16.")]
    typed = _notebook(("code", "", "accuracy 59.2%\n"),
                      ("md", "we measured 70% validation accuracy after 3 epochs"))
    assert [t for _, t, _ in unbacked_numbers(typed, "x.py")] == ["70", "3"]
    QUOTED["x.py"] = {"70": "a quoted fact, with its source"}
    try:
        assert [t for _, t, _ in unbacked_numbers(typed, "x.py")] == ["3"]
    finally:
        del QUOTED["x.py"]
    assert [t for _, t, _ in unbacked_numbers(_notebook(("md", "169 rows, not 7x9")), "x")] \
        == ["169", "7", "9"]


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
    unbacked = unbacked_numbers(nb, name)
    assert not unbacked, (f"{name}: numbers in the prose that the run does not print, no "
                          f"code cell beside them sets or asserts, and QUOTED does not list "
                          f"(print them with an f-string, assert them, or quote a source): "
                          + "; ".join(f"cell {i}: {t!r} in '...{c}...'" for i, t, c in unbacked))


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
