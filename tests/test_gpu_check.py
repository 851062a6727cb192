"""scripts/gpu_check.py (`make gpu-check`): one line and exit 0 without a GPU; on the CuPy
stand-in, the steps that mean something on a CPU (versions, tutorial 9, parity, training)
run and write their report. What only a GPU can show (pytest -m gpu on it, the timing against
torch CUDA) is left to a real one."""
import json
import os
import subprocess
import sys

import pytest

from conftest import NEEDS_GPU, STANDIN

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "gpu_check.py")


def test_without_a_gpu_it_says_so_in_one_line_and_exits_0(tmp_path):
    (tmp_path / "cupy.py").write_text("raise ImportError('no CuPy on this test machine')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), ROOT]),
               OUT=str(tmp_path / "out"))
    proc = subprocess.run([sys.executable, SCRIPT], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu-check: no GPU to check here")
    assert "no CuPy on this test machine" in lines[0] and proc.stderr == ""
    assert not (tmp_path / "out").exists()


def test_a_wrong_step_name_is_one_line_exit_2():
    proc = subprocess.run([sys.executable, SCRIPT, "--skip", "timing,speed"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--skip: expected names from" in proc.stderr
    assert "speed" in proc.stderr and len(proc.stderr.splitlines()) == 1


@NEEDS_GPU[0]
@NEEDS_GPU[1]
@pytest.mark.skipif(not STANDIN, reason="on a real GPU, run `make gpu-check` itself")
def test_on_the_standin_the_cpu_meaningful_steps_run_and_report(tmp_path, capsys):
    sys.path.insert(0, os.path.dirname(SCRIPT))
    try:
        import gpu_check
    finally:
        sys.path.remove(os.path.dirname(SCRIPT))
    rc = gpu_check.main(["--out", str(tmp_path), "--skip", "pytest,timing"])
    out = capsys.readouterr().out
    assert rc == 0, out
    report = json.loads((tmp_path / "report.json").read_text())
    assert [s for s in gpu_check.STEPS if s in report] == ["versions", "tutorial", "parity",
                                                           "train"]
    assert all(report[s]["ok"] for s in ("versions", "tutorial", "parity", "train")), report
    assert "stand-in" in report["versions"]["result"]["device"]
    parity = report["parity"]["result"]
    assert sorted(parity) == ["swin_micro float32", "swin_micro float64",
                              "swinv2_digits float32", "swinv2_digits float64"]
    p64 = parity["swin_micro float64"]
    assert p64["gradients"] > 20 and p64["max_rel_error"] <= 1e-10
    assert (tmp_path / "train_digits_tiny" / "last.safetensors").exists()
    assert (tmp_path / "tutorial_09.txt").read_text().strip().endswith("all checks passed")
    md = (tmp_path / "report.md").read_text()
    assert "| parity | yes |" in md and "| train | yes |" in md
