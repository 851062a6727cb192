"""`minswin tour` runs end to end in a subprocess and writes every figure it lists."""
import os
import re
import subprocess
import sys

import pytest
from PIL import Image

import minswin


@pytest.mark.slow
def test_tour_runs_and_writes_what_it_lists(tmp_path):
    out = tmp_path / "figs"
    env = dict(os.environ, MPLBACKEND="Agg")
    # with torch, timm, transformers and the notebook tools unimportable: the tour needs
    # only what `make tour` installs (tests/without_oracles.py; .ci/run checks the install)
    without = os.path.join(os.path.dirname(__file__), "without_oracles.py")
    proc = subprocess.run([sys.executable, without, "tour", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = proc.stdout
    # the numbers come out of the model and minswin.flops, and match SPEC / the explainer
    model = minswin.create_model("swin_t")
    assert f"parameters: {model.num_params():,}" in text and "28,288,354" in text
    assert f"{model.flops() / 1e9:.3f} G" in text and "4.494 G" in text
    assert f"{minswin.flops.msa_saving(224, 224, 3, 7):,}" in text
    assert "15,091,034,112" in text
    for shape in ("224x224x3", "56x56x48", "56x56x96", "28x28x192", "14x14x384", "7x7x768",
                  "(1, 768)", "(1, 1000)"):
        assert shape in text
    for windows in ("64 windows", "16 windows", "4 windows", "1 window"):
        assert windows in text
    assert "mask (64, 49, 49), 15 of 64 windows" in text
    stage4 = text.split("stage 4:")[-1].split("==")[0]     # the windows-and-masks section
    assert "SW-MSA" not in stage4 and "no shift, no mask" in stage4
    # the one-line list of what was written, and every file in it is a real image
    line = next(t for t in text.splitlines() if t.startswith("wrote "))
    m = re.match(r"wrote (\d+) files to (.+?): (.+)$", line)
    assert m, line
    names = m.group(3).split(", ")
    assert int(m.group(1)) == len(names) >= 15
    assert os.path.samefile(m.group(2), out)
    assert sorted(names) == sorted(os.listdir(out))
    # learned pictures from the shipped trained model; random ones say so in their name
    assert {"05_bias_trained.png", "06_query_attention_trained.png"} <= set(names)
    assert all("trained" in n or "random" in n for n in names if n[:2] in ("05", "06"))
    for name in names:
        with Image.open(out / name) as im:
            assert im.size[0] >= 300 and im.size[1] >= 300, name
            if name.endswith(".gif"):
                assert im.is_animated
    assert "figures" in proc.stderr                        # the tqdm progress bar


def test_tour_refuses_a_file_as_folder(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    proc = subprocess.run([sys.executable, "-m", "minswin", "tour", "--out", str(f)],
                          capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, MPLBACKEND="Agg"))
    assert proc.returncode == 2 and "not a folder" in proc.stderr
    assert "Traceback" not in proc.stderr
