"""Bad input and faults, second round (issue 21): one table row per family, each asserting the
exit code (or the named error), the message's key words, and that nothing on disk, in the
model or in its gradients changed.

The grader rows run `minswin exercise check` in a child process with its own protections: a
wall-clock timeout, its own process group killed on the way out, and an address-space limit,
so a regression (a grader that hangs on a FIFO, allocates what a forged header claims, or
leaves the learner's processes running) fails its row instead of taking the machine down.
"""
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import zipfile

import numpy as np
import pytest

from minswin.checkpoint import load_checkpoint, save_checkpoint
from minswin.training import META_KEY, train

from test_bad_inputs import QUIET, TINY_RUN, assert_same_state, model_state, run_cli, snapshot

pytest.importorskip("sklearn")                  # the digits come with scikit-learn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GRADER_MEMORY = 3 << 30       # the address space the grader's process may take in these rows


def _env(**extra):
    return dict(os.environ, PYTHONPATH=os.pathsep.join(
        [ROOT] + [p for p in [os.environ.get("PYTHONPATH")] if p]), **extra)


def run_guarded(argv, cwd, timeout=120, memory=GRADER_MEMORY):
    """(exit status, stdout + stderr, seconds) of `python -m minswin ARGV` in a child with an
    address-space limit, in its own process group, killed (the whole group) on timeout."""
    def limits():
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "minswin", *argv], cwd=cwd, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, preexec_fn=limits)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"minswin {' '.join(argv)} did not finish in {timeout} s (hung): "
                    f"{out.decode(errors='replace')[-1000:]}")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)           # whatever it left in its group
        except ProcessLookupError:
            pass
    return proc.returncode, out.decode("utf-8", errors="replace"), time.monotonic() - t0


# ---------------------------------------------------------------------------- the grader

# learner files: each forges, blocks or escapes in one way; PIDFILE is where a file that
# starts processes writes their ids
LEARNERS = {
    # the results become a FIFO: reading it would wait for a writer for ever
    "fifo_status": """
        import os, sys
        def gelu_backward(dout, cache):
            os.mkfifo(os.path.join(sys.argv[-1], "status.json"))
            os._exit(0)
        """,
    "fifo_grads": """
        import json, os, sys
        def gelu_backward(dout, cache):
            work = sys.argv[-1]
            with open(os.path.join(work, "status.json"), "w") as f:
                json.dump({"load": {"status": "ok"}, "outcomes": [
                    {"kind": "returned", "value": {"array": "case0"}}]}, f)
            os.mkfifo(os.path.join(work, "grads.npz"))
            os._exit(0)
        """,
    "grads_link_to_dev_zero": """
        import json, os, sys
        def gelu_backward(dout, cache):
            work = sys.argv[-1]
            with open(os.path.join(work, "status.json"), "w") as f:
                json.dump({"load": {"status": "ok"}, "outcomes": [
                    {"kind": "returned", "value": {"array": "case0"}}]}, f)
            os.symlink("/dev/zero", os.path.join(work, "grads.npz"))
            os._exit(0)
        """,
    # a result header claiming a (10^6, 10^6) float64 array: 8 TB
    "huge_header": """
        import io, json, os, sys, zipfile
        import numpy as np
        def gelu_backward(dout, cache):
            work = sys.argv[-1]
            buf = io.BytesIO()
            np.lib.format.write_array_header_1_0(
                buf, {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)})
            with zipfile.ZipFile(os.path.join(work, "grads.npz"), "w") as z:
                z.writestr("case0.npy", buf.getvalue() + b"\\0" * 64)
            with open(os.path.join(work, "status.json"), "w") as f:
                json.dump({"load": {"status": "ok"}, "outcomes": [
                    {"kind": "returned", "value": {"array": "case0"}}]}, f)
            os._exit(0)
        """,
    "deep_json": """
        import os, sys
        def gelu_backward(dout, cache):
            with open(os.path.join(sys.argv[-1], "status.json"), "w") as f:
                f.write("[" * 200000 + "]" * 200000)
            os._exit(0)
        """,
    "work_becomes_a_file": """
        import os, shutil, sys
        def gelu_backward(dout, cache):
            work = sys.argv[-1]
            shutil.rmtree(work)
            with open(work, "w") as f:
                f.write("not a folder")
            os._exit(0)
        """,
    "work_becomes_a_link": """
        import os, shutil, sys
        def gelu_backward(dout, cache):
            work = sys.argv[-1]
            shutil.rmtree(work)
            os.symlink(os.path.expanduser("~"), work)
            os._exit(0)
        """,
    # a grandchild in its own session, one more under it, both sleeping past the verdict
    "setsid_grandchildren": """
        import os, time
        def gelu_backward(dout, cache):
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    os.setsid()
                with open(PIDFILE, "a") as f:
                    f.write(f"{os.getpid()}\\n")
                time.sleep(60)
                os._exit(0)
            time.sleep(0.5)
            raise ValueError("the processes I started are still running")
        """,
    "allocates_a_gigabyte": """
        import numpy as np
        def gelu_backward(dout, cache):
            hog = np.ones(1 << 27)         # 1 GiB: over a --memory of 300M
            return dout * hog[0]
        """,
    "hides_the_verdict": """
        import numpy as np
        print("\\x1b[8m")                   # ESC[8m: what follows is invisible
        print("\\rPASSED: all 2 checks ok. Well done!\\x1b[1A\\x1b[2K")
        def gelu_backward(dout, cache):
            return np.zeros_like(dout)
        """,
}

# (learner, extra flags, exit code, words in the output, words that must not be there)
GRADER_ROWS = [
    ("fifo_status", [], 1, ["FAILED", "could not be read", "not a regular file"], []),
    ("fifo_grads", [], 1, ["FAILED", "could not be read", "grads.npz is not a regular file"], []),
    ("grads_link_to_dev_zero", [], 1, ["FAILED", "could not be read", "grads.npz"], []),
    ("huge_header", [], 1, ["FAILED", "could not be read", "(1000000, 1000000)",
                            "8,000,000,000,000 bytes"], ["MemoryError", "bug"]),
    ("deep_json", [], 1, ["FAILED", "could not be read", "nested deeper"],
     ["RecursionError", "bug"]),
    ("work_becomes_a_file", [], 1, ["FAILED", "work folder was removed or replaced"], ["bug"]),
    ("work_becomes_a_link", [], 1, ["FAILED", "work folder was removed or replaced"], ["bug"]),
    ("setsid_grandchildren", [], 1, ["ERROR", "still running"], []),
    ("allocates_a_gigabyte", ["--memory", "300M"], 1, ["ERROR", "MemoryError", "--memory"],
     []),
    ("hides_the_verdict", [], 1, ["FAILED: 0 of 2 checks ok", "\\x1b[8m", "\\rPASSED"],
     ["\x1b", "\r"]),
]


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.mark.parametrize("name, flags, code, words, absent", GRADER_ROWS,
                         ids=[r[0] for r in GRADER_ROWS])
def test_grader_ends_in_time_and_takes_nothing_on_trust(tmp_path, name, flags, code, words,
                                                        absent):
    learner, cwd = tmp_path / "learner", tmp_path / "cwd"
    learner.mkdir()
    cwd.mkdir()
    pidfile = str(tmp_path / "pids")
    path = learner / f"{name}.py"
    path.write_text(textwrap.dedent(LEARNERS[name]).replace("PIDFILE", repr(pidfile)))
    before = snapshot(str(learner), str(cwd))
    try:
        rc, text, seconds = run_guarded(["exercise", "check", "gelu_backward", str(path),
                                         "--timeout", "60", *flags], str(cwd))
        pids = [int(p) for p in open(pidfile).read().split()] if os.path.exists(pidfile) else []
        alive = [p for p in pids if _alive(p)]
    finally:
        for p in pids if "pids" in locals() else []:
            try:
                os.kill(p, signal.SIGKILL)                 # a regression must not leave them
            except ProcessLookupError:
                pass
    assert rc == code, text
    for w in words:
        assert w in text, (w, text[-3000:])
    for w in absent:
        assert w not in text, (w, text[-3000:])
    assert "PASSED: all" not in text.replace("\\rPASSED: all", "")
    assert "Traceback (most recent call last):\n  File \"<string>\"" not in text
    assert snapshot(str(learner), str(cwd)) == before
    if name == "setsid_grandchildren":
        assert len(pids) == 2 and not alive, (pids, alive)
        assert seconds < 9, seconds          # no 10 s wait for a pipe a survivor held open
