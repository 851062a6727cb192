"""scripts/gpu_check.py (`make gpu-check`): one line and exit 0 without a GPU; exit 1 with the
fix where a GPU is there and CuPy or a package is missing; the report after every step; step
limits from the measured unit; and, on the CuPy stand-in, the steps that mean something on a
CPU (versions, tutorial 9, parity, training) run and report. What only a GPU can show (pytest
-m gpu on it, the timing against torch CUDA) is left to a real one: here the timing step must
fail, as torch has no CUDA."""
import json
import os
import subprocess
import sys
import time

import pytest
from conftest import NEEDS_GPU, STANDIN

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "gpu_check.py")
sys.path.insert(0, os.path.dirname(SCRIPT))
import gpu_check  # noqa: E402

sys.path.remove(os.path.dirname(SCRIPT))


@pytest.fixture(autouse=True)
def keep_environment(monkeypatch):
    """main() sets PYTHONPATH and CUPY_TF32 for its subprocesses: undone after each test."""
    for name in ("PYTHONPATH", "CUPY_TF32"):
        was = os.environ.get(name)
        monkeypatch.setenv(name, was or "")               # recorded, restored at the end
        if was is None:
            monkeypatch.delenv(name)


@pytest.fixture
def no_cupy(monkeypatch):
    """`import cupy` fails, and the backend has forgotten what it found out before."""
    from minswin import backend
    monkeypatch.setattr(backend, "_cupy", None)
    monkeypatch.setattr(backend, "_cupy_error", None)
    monkeypatch.setitem(sys.modules, "cupy", None)
    return monkeypatch


@pytest.mark.skipif(gpu_check.gpu_present() is not None,
                    reason="this machine has an NVIDIA GPU: the no-GPU path cannot be run")
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


def test_a_gpu_without_cupy_is_exit_1_with_the_install_line(no_cupy, tmp_path, capsys):
    no_cupy.setattr(gpu_check, "gpu_present", lambda: "an NVIDIA GPU is here (/dev/nvidia0)")
    rc = gpu_check.main(["--out", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert rc == 1 and out == "" and len(err.splitlines()) == 1, (out, err)
    assert err.startswith(f"gpu-check: FAILED: an NVIDIA GPU is here (/dev/nvidia0); "
                          f"{sys.executable}: CuPy is not installed")
    assert 'pip install -e ".[gpu-cuda12]"' in err and not (tmp_path / "out").exists()


def test_no_gpu_at_all_is_one_line_exit_0_in_process(no_cupy, tmp_path, capsys):
    no_cupy.setattr(gpu_check, "gpu_present", lambda: None)
    assert gpu_check.main(["--out", str(tmp_path / "out")]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("gpu-check: no GPU to check here (CuPy is not installed")
    assert len(out.splitlines()) == 1 and err == ""


def _fake_root(tmp_path, dev=False, driver=False, pci=None):
    root = tmp_path / "root"
    (root / "dev").mkdir(parents=True)
    if dev:
        (root / "dev" / "nvidia0").write_text("")
    (root / "dev" / "nvidiactl").write_text("")            # not a GPU by itself
    if driver:
        (root / "proc" / "driver" / "nvidia").mkdir(parents=True)
    for i, (vendor, cls) in enumerate(pci or []):
        d = root / "sys" / "bus" / "pci" / "devices" / f"0000:0{i}:00.0"
        d.mkdir(parents=True)
        (d / "vendor").write_text(vendor + "\n")
        (d / "class").write_text(cls + "\n")
    return str(root)


def test_gpu_present_reads_the_device_files_the_driver_and_the_pci_bus(tmp_path):
    nvidia_gpu, other = ("0x10de", "0x030200"), ("0x8086", "0x030000")
    assert gpu_check.gpu_present(_fake_root(tmp_path / "a", dev=True, driver=True)) == \
        f"an NVIDIA GPU is here ({tmp_path / 'a' / 'root' / 'dev' / 'nvidia0'})"
    # a container given no GPU: the host's driver is visible, its devices are not
    assert gpu_check.gpu_present(_fake_root(tmp_path / "b", driver=True,
                                            pci=[nvidia_gpu])) is None
    no_driver = gpu_check.gpu_present(_fake_root(tmp_path / "c", pci=[other, nvidia_gpu]))
    assert "on the PCI bus (0000:01:00.0) but no NVIDIA driver is loaded" in no_driver
    assert gpu_check.gpu_present(_fake_root(tmp_path / "d", pci=[other])) is None
    assert gpu_check.gpu_present(_fake_root(tmp_path / "e",
                                            pci=[("0x10de", "0x040300")])) is None   # audio


def test_a_missing_package_is_exit_1_with_the_install_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(gpu_check, "NEEDS", gpu_check.NEEDS + (("no_such_module_x", "no-such"),))
    monkeypatch.setattr("minswin.backend.cupy_unavailable_reason", lambda: None)
    rc = gpu_check.main(["--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 1 and len(err.splitlines()) == 1
    assert "lacks no-such" in err and 'pip install -e ".[gpu-cuda12]"' in err
    assert not (tmp_path / "out").exists()


def test_a_wrong_argument_is_one_line_exit_2():
    for args, words in ((["--skip", "timing,speed"], ["--skip: expected names from", "speed"]),
                        (["--skip", "versions"], ["--skip", "versions"]),
                        (["--budget", "0"], ["--budget: expected seconds > 0, got 0"])):
        proc = subprocess.run([sys.executable, SCRIPT] + args, capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, args
        assert all(w in proc.stderr for w in words), proc.stderr


# ---------------------------------------------------------------------------- limits, report

def test_step_limits_scale_with_the_measured_unit_within_the_budget():
    limit = gpu_check.step_limit
    U, SAFETY = gpu_check.UNITS, gpu_check.SAFETY
    # slack in the budget: the step may use what the later steps are not expected to need
    assert limit("tutorial", ["pytest"], unit=1.0, first=1.0, left=1e6)[0] == 1e6 - U["pytest"]
    # no slack: SAFETY x its expected cost, which scales with the measured unit
    a = limit("tutorial", ["pytest"], unit=1.0, first=1.0, left=U["pytest"] + 10)[0]
    b = limit("tutorial", ["pytest"], unit=2.0, first=2.0, left=U["pytest"] + 10)[0]
    assert a == SAFETY * U["tutorial"] and b == 2 * a
    # the first-call allowance (first call - warm call) is added for each expected compile
    c = limit("tutorial", ["pytest"], unit=1.0, first=11.0, left=U["pytest"] + 10)[0]
    assert c == SAFETY * (U["tutorial"] + gpu_check.COMPILES["tutorial"] * 10.0)
    # never more than what is left of the budget
    assert limit("tutorial", ["pytest"], unit=1.0, first=1.0, left=30.0)[0] == 30.0


def _fake_steps(monkeypatch, train):
    monkeypatch.setattr(gpu_check, "versions",
                        lambda: ({"device": "fake", "unit_s": 0.01, "unit_first_s": 0.02}, True))
    monkeypatch.setattr(gpu_check, "train_tiny", train)


def test_a_step_past_its_limit_fails_and_the_report_says_so(monkeypatch, tmp_path, capsys):
    def slow(out):
        time.sleep(30)
        return {}, True
    _fake_steps(monkeypatch, slow)
    t = time.perf_counter()
    rc = gpu_check.run_steps(str(tmp_path), ["versions", "train"], budget=2.0)
    assert rc == 1 and time.perf_counter() - t < 10
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["versions"]["ok"] is True and report["train"]["ok"] is False
    assert report["train"]["error"] == "StepTimeout: ran past its limit of 2 s", report
    assert report["status"].startswith("FAILED: train (not run, as asked: pytest")
    assert "| train | NO |" in (tmp_path / "report.md").read_text()


def test_the_report_is_on_disk_before_each_step_runs(monkeypatch, tmp_path, capsys):
    seen = {}

    def peek(out):
        seen.update(json.loads((tmp_path / "report.json").read_text()))
        return {"test_acc": 0.9}, True
    _fake_steps(monkeypatch, peek)
    assert gpu_check.run_steps(str(tmp_path), ["versions", "train"], budget=100.0) == 0
    assert seen["status"] == "running train" and seen["versions"]["ok"] is True
    assert seen["train"]["ok"] is None and seen["train"]["limit_s"] > 0
    assert json.loads((tmp_path / "report.json").read_text())["status"].startswith(
        "all checks passed (not run, as asked: pytest, tutorial, parity, timing)")


def test_without_a_measured_unit_the_later_steps_fail_not_pass(monkeypatch, tmp_path, capsys):
    def broken():
        raise RuntimeError("no kernel")
    monkeypatch.setattr(gpu_check, "versions", broken)
    monkeypatch.setattr(gpu_check, "train_tiny", lambda out: ({}, True))
    assert gpu_check.run_steps(str(tmp_path), ["versions", "train"], budget=100.0) == 1
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["train"]["ok"] is False and "no measured unit" in report["train"]["error"]


# ---------------------------------------------------------------------------- on the stand-in

@NEEDS_GPU[0]
@NEEDS_GPU[1]
@pytest.mark.skipif(not STANDIN, reason="needs the CuPy stand-in (MINSWIN_CUPY_STANDIN=1); "
                    "on a real GPU, `make gpu-check` runs these steps itself")
def test_on_the_standin_the_cpu_meaningful_steps_run_and_report(tmp_path, capsys):
    rc = gpu_check.main(["--out", str(tmp_path), "--skip", "pytest,timing", "--budget",
                         "600"])
    out = capsys.readouterr().out
    assert rc == 0, out
    report = json.loads((tmp_path / "report.json").read_text())
    assert [s for s in gpu_check.STEPS if s in report] == ["versions", "tutorial", "parity",
                                                           "train"]
    assert all(report[s]["ok"] for s in ("versions", "tutorial", "parity", "train")), report
    assert report["status"] == "all checks passed (not run, as asked: pytest, timing)"
    assert "stand-in" in report["versions"]["result"]["device"]
    assert report["versions"]["result"]["unit_s"] > 0
    parity = report["parity"]["result"]
    assert sorted(parity) == ["swin_micro float32", "swin_micro float64",
                              "swinv2_digits float32", "swinv2_digits float64"]
    p64 = parity["swin_micro float64"]
    assert p64["gradients"] > 20 and p64["max_rel_error"] <= 1e-10
    assert (tmp_path / "train_digits_tiny" / "last.safetensors").exists()
    assert (tmp_path / "tutorial_09.txt").read_text().strip().endswith("all checks passed")
    md = (tmp_path / "report.md").read_text()
    assert "| parity | yes |" in md and "| train | yes |" in md


@NEEDS_GPU[0]
@NEEDS_GPU[1]
@pytest.mark.skipif(not STANDIN, reason="needs the CuPy stand-in (MINSWIN_CUPY_STANDIN=1); "
                    "on a real GPU, `make gpu-check` runs these steps itself")
def test_the_timing_step_fails_without_pytorch_cuda(tmp_path, capsys):
    """No baseline, no timing: a CPU-only torch (or none) fails the step, saying why, and the
    check exits 1 instead of reporting minswin's figures alone."""
    rc = gpu_check.main(["--out", str(tmp_path), "--skip", "pytest,tutorial,parity,train"])
    assert rc == 1
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["timing"]["ok"] is False and report["status"].startswith("FAILED: timing")
    assert "CUDA" in report["timing"]["error"] and "torch" in report["timing"]["error"]
    assert "minswin_fwd_s" not in json.dumps(report)


def test_make_gpu_check_uses_the_python_given_and_builds_no_venv(tmp_path):
    """The target runs scripts/gpu_check.py with $(PYTHON) as it is: it must not depend on the
    CPU-torch venv (which has no CuPy, and would make the check say 'no GPU' on a GPU)."""
    import shutil
    if shutil.which("make") is None:
        pytest.skip("make is not installed here")
    proc = subprocess.run(["make", "-n", "-C", ROOT, "gpu-check", "PYTHON=/opt/gpu/python3"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if not ln.startswith("make")]
    assert lines == ["MPLBACKEND=Agg /opt/gpu/python3 scripts/gpu_check.py"], proc.stdout
