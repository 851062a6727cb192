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


# ---------------------------------------------------------------------------- training runs

@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """run2: two epochs, stopped after one and resumed in place, with an epoch-1 snapshot
    copied into it (epoch1.safetensors); run3: a copy of run2 whose last.safetensors is that
    older snapshot; checkpoints whose run state is malformed."""
    root = tmp_path_factory.mktemp("runs")
    run2 = root / "run2"
    first = train("digits_tiny", out=str(run2), epochs=2, limit=64, stop_after=1, **QUIET)
    shutil.copy(first.last_path, run2 / "epoch1.safetensors")
    train(resume=first.last_path, out=str(run2), **QUIET)
    shutil.copytree(run2, root / "run3")
    shutil.copy(run2 / "epoch1.safetensors", root / "run3" / "last.safetensors")
    state, meta = load_checkpoint(str(run2 / "epoch1.safetensors"), with_metadata=True)
    info = json.loads(meta[META_KEY])
    for name, change in [("badbest", {"best": "oops"}), ("badsums", {"sums": [1, "x", 3]}),
                         ("badhistory", {"history": []}), ("nanbest", {"best": [1.0, None]})]:
        save_checkpoint(str(root / f"{name}.safetensors"), state,
                        {META_KEY: json.dumps({**info, **change})})
    return {"root": str(root), "run2": str(run2), "run3": str(root / "run3"),
            **{n: str(root / f"{n}.safetensors")
               for n in ("badbest", "badsums", "badhistory", "nanbest")}}


# (id, argv with {names} from `runs` and {cwd}, exit code, words)
RUN_ROWS = [
    # a resume never overwrites newer work of its own run
    ("resume-an-older-snapshot-in-its-run", ["train", "--resume", "{run2}/epoch1.safetensors",
                                             "--no-progress"], 2,
     ["not the latest checkpoint", "overwrite newer files", "--out {run2}-from-epoch1"]),
    ("resume-an-older-snapshot-out-its-run", ["train", "--resume", "{run2}/epoch1.safetensors",
                                              "--out", "{run2}", "--no-progress"], 2,
     ["not the latest checkpoint", "overwrite newer files", "--out {run2}-from-epoch1"]),
    ("resume-a-last-older-than-the-run", ["train", "--resume", "{run3}/last.safetensors",
                                          "--no-progress"], 2,
     ["not the latest checkpoint", "overwrite newer files", "the checkpoint"]),
    # refused after the folder was made, once: now refused before
    ("train-label-smoothing-2", ["train", *TINY_RUN, "--label-smoothing", "2", "--out",
                                 "{cwd}/r"], 2, ["label_smoothing", "[0, 1)", "2.0"]),
    ("train-label-smoothing-1", ["train", *TINY_RUN, "--label-smoothing", "1", "--out",
                                 "{cwd}/r"], 2, ["label_smoothing", "[0, 1)", "1.0"]),
    ("train-max-shift-30000", ["train", *TINY_RUN, "--max-shift", "30000", "--out", "{cwd}/r"],
     2, ["max_shift", "[0, 16)", "30000"]),
    ("train-fast-2", ["train", *TINY_RUN, "--out", "{cwd}/r"], 2, ["MINSWIN_FAST", "'2'"]),
    ("resume-best-malformed", ["train", "--resume", "{badbest}", "--out", "{cwd}/r"], 2,
     ["cannot be continued", "best", "oops"]),
    ("resume-best-not-finite", ["train", "--resume", "{nanbest}", "--out", "{cwd}/r"], 2,
     ["cannot be continued", "best"]),
    ("resume-sums-malformed", ["train", "--resume", "{badsums}", "--out", "{cwd}/r"], 2,
     ["cannot be continued", "sums"]),
    ("resume-history-malformed", ["train", "--resume", "{badhistory}", "--out", "{cwd}/r"], 2,
     ["cannot be continued", "history"]),
    ("resume-best-malformed-deep-out", ["train", "--resume", "{badbest}", "--out",
                                        "{cwd}/a/b/c"], 2, ["cannot be continued", "best"]),
]
RUN_ENV = {"train-fast-2": {"MINSWIN_FAST": "2"}}


@pytest.mark.parametrize("row", [r[0] for r in RUN_ROWS])
def test_runs_lose_nothing_and_leave_nothing(runs, tmp_path, monkeypatch, capsys, row):
    argv, code, words = next(r[1:] for r in RUN_ROWS if r[0] == row)
    monkeypatch.chdir(tmp_path)
    for k, v in RUN_ENV.get(row, {}).items():
        monkeypatch.setenv(k, v)
    argv = [a.format(cwd=str(tmp_path), **runs) for a in argv]
    words = [w.format(cwd=str(tmp_path), **runs) for w in words]
    before = snapshot(runs["root"], str(tmp_path))
    rc, text = run_cli(capsys, argv)
    assert rc == code, text
    for w in words:
        assert w in text, (w, text)
    assert "Traceback" not in text and "unexpected" not in text, text
    assert len([line for line in text.splitlines() if "error:" in line]) == 1, text
    assert snapshot(runs["root"], str(tmp_path)) == before       # no file, no folder


def test_a_folder_in_use_is_refused_before_anything_is_written(tmp_path, capsys):
    from minswin.atomic import owned_folder
    out = tmp_path / "busy"
    with owned_folder(str(out)):                       # as a running `minswin train` holds it
        before = snapshot(str(tmp_path))
        rc, text = run_cli(capsys, ["train", *TINY_RUN, "--out", str(out)])
        assert snapshot(str(tmp_path)) == before
    assert rc == 2 and "in use by another minswin run" in text and "--out" in text, text
    assert not out.exists()                            # the holder made it, wrote nothing


def test_two_runs_started_together_cannot_share_a_folder(tmp_path):
    out = str(tmp_path / "shared")
    procs = [subprocess.Popen([sys.executable, "-m", "minswin", "train", *TINY_RUN, "--seed",
                               str(seed), "--out", out], env=_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, start_new_session=True)
             for seed in (1, 2)]
    try:
        results = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], results
    refused = results[[p.returncode for p in procs].index(2)][1]
    assert ("in use by another minswin run" in refused or "already holds a run" in refused), \
        refused
    seeds = {json.loads(load_checkpoint(os.path.join(out, f), with_metadata=True)[1][META_KEY])
             ["config"]["seed"] for f in ("last.safetensors", "best.safetensors")}
    assert len(seeds) == 1, seeds                      # one run's files, never a mix


def test_two_ctrl_c_during_a_checkpoint_save_leave_it_whole(tmp_path, monkeypatch):
    """The first Ctrl-C asks the loop to stop; the second comes while last.safetensors is
    being written: the save finishes, then the run stops, and the checkpoint resumes."""
    import safetensors.numpy

    from minswin.loss import cross_entropy_forward
    real_save = safetensors.numpy.save_file

    def save_then_ctrl_c(*args, **kw):
        real_save(*args, **kw)
        signal.raise_signal(signal.SIGINT)             # the second press, mid-save

    def first_press(logits, labels, eps):
        signal.raise_signal(signal.SIGINT)
        return cross_entropy_forward(logits, labels, eps)

    monkeypatch.setattr(safetensors.numpy, "save_file", save_then_ctrl_c)
    out = tmp_path / "r"
    with pytest.raises(KeyboardInterrupt):
        train("digits_tiny", out=str(out), limit=64, loss_fn=first_press, **QUIET)
    assert sorted(os.listdir(out)) == ["last.safetensors"], os.listdir(out)
    monkeypatch.setattr(safetensors.numpy, "save_file", real_save)
    r = train(resume=str(out / "last.safetensors"), out=str(out), **QUIET)
    assert r.finished


def test_a_diverged_run_exits_1_and_history_is_strict_json(tmp_path, capsys):
    out = tmp_path / "r"
    rc, text = run_cli(capsys, ["train", *TINY_RUN, "--lr", "1e30", "--out", str(out)])
    assert rc == 1, text
    assert "diverged" in text and "*best" not in text and "test accuracy" not in text, text
    with open(out / "history.json") as f:
        history = json.load(f, parse_constant=lambda c: pytest.fail(f"{c} in history.json"))
    assert history["diverged"] is True
    assert not (out / "best.safetensors").exists()


def test_a_warmup_longer_than_any_run_is_the_whole_run():
    from minswin.training import lr_at, make_config
    cfg = make_config("digits_tiny", warmup_epochs=1e308, epochs=2)
    lrs = [lr_at(cfg, s, 10) for s in range(20)]       # no OverflowError: all warm-up
    assert lrs == sorted(lrs) and lrs[-1] <= cfg.lr
