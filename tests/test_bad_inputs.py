"""Bad input and faults, one table row each: the exit code (or the named error), the words the
message must hold, and that nothing on disk or in the model changed.

CLI rows run `minswin.cli.main` in this process (cwd: a fresh folder, so a stray output file
would show); only the grader's rows start processes (the grader runs each learner file in a
child), and the disk-full rows run in a child whose file-size limit makes writes fail.
"""
import hashlib
import json
import os
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from minswin.checkpoint import load_checkpoint, save_checkpoint
from minswin.cli import main
from minswin.model import create_model
from minswin.training import META_KEY, train

pytest.importorskip("sklearn")                  # the digits come with scikit-learn

QUIET = dict(progress=False, plots=False, log=lambda s: None)
TINY_RUN = ["--config", "digits_tiny", "--epochs", "1", "--limit", "64", "--no-progress"]


# ---------------------------------------------------------------------------- helpers

def snapshot(*roots):
    """{path: (kind, sha1)} of every folder and file under `roots`."""
    seen = {}
    for root in roots:
        for here, dirs, files in os.walk(root):
            seen[here] = ("dir", "")
            for f in files:
                p = os.path.join(here, f)
                with open(p, "rb") as fh:
                    seen[p] = ("file", hashlib.sha1(fh.read()).hexdigest())
    return seen


def run_cli(capsys, argv):
    """(exit status, stdout + stderr) of `minswin ...` run in this process."""
    try:
        rc = main(list(argv))
    except SystemExit as exc:                              # argparse's own errors
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out + err


def model_state(model):
    return {k: np.array(v, copy=True) for k, v in model.params.items()}, \
        {k: np.array(v, copy=True) for k, v in model.grads.items()}


def assert_same_state(a, b):
    for da, db in zip(a, b):
        assert sorted(da) == sorted(db)
        for k in da:
            assert np.array_equal(da[k], db[k], equal_nan=True), k


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A one-epoch run and the broken files derived from it."""
    root = tmp_path_factory.mktemp("bad_inputs")
    run = train("digits_tiny", out=str(root / "run"), epochs=1, limit=64, **QUIET)
    state, meta = load_checkpoint(run.last_path, with_metadata=True)
    info = json.loads(meta[META_KEY])

    def write(name, tensors=None, **meta_changes):
        m = {k: v for k, v in info.items() if k not in meta_changes}
        m.update({k: v for k, v in meta_changes.items() if v is not None})
        save_checkpoint(str(root / name), tensors or state, {META_KEY: json.dumps(m)})

    nan = {k: v.copy() for k, v in state.items()}
    nan["head.weight"][0, :3] = np.nan
    nan["head.weight"][1, 0] = np.inf
    write("nan.safetensors", nan)
    write("noconfig.safetensors", config=None)
    bad_opt = {k: v.copy() for k, v in state.items()}
    bad_opt["optimizer.exp_avg_sq.head.bias"][:2] = np.nan
    write("nanopt.safetensors", bad_opt)
    write("badstep.safetensors", step=info["step"] + 5)
    write("negstep.safetensors", step=-1, epoch=0, batch=0)
    write("norng.safetensors", model_rng=None)
    write("badconfig.safetensors", config={**info["config"], "bogus": 1})
    save_checkpoint(str(root / "notjson.safetensors"), state, {META_KEY: "[1, 2"})
    save_checkpoint(str(root / "plain.safetensors"),
                    {k: v for k, v in state.items() if not k.startswith("optimizer.")})
    (root / "garbage.safetensors").write_bytes(b"\x00not a safetensors file" * 10)
    (root / "model.pth").write_bytes(b"\x80\x04pickle")
    (root / "afile").write_text("not a folder\n")
    rng = np.random.default_rng(0)
    np.savez(root / "three.npz", x=rng.integers(0, 255, (3, 8, 8, 3), dtype=np.uint8),
             y=np.array([0, 1, 2]))
    (root / "other").mkdir()
    (root / "other" / "history.json").write_text("{}")         # another run's file
    paths = {p.stem: str(p) for p in root.iterdir() if p.is_file()}
    paths.update(root=str(root), run=str(root / "run"), last=run.last_path, best=run.best_path,
                 learner=str(root / "learner"), other=str(root / "other"))
    os.makedirs(paths["learner"])
    for name, source in LEARNER_FILES.items():
        with open(os.path.join(paths["learner"], name + ".py"), "w") as f:
            f.write(textwrap.dedent(source))
    return paths


# ---------------------------------------------------------------------------- learner files

LEARNER_FILES = {
    "os_exit_0": """
        import os
        def gelu_backward(dout, cache):
            os._exit(0)
        """,
    "os_exit_3": """
        import os
        def gelu_backward(dout, cache):
            os._exit(3)
        """,
    "sys_exit_in_backward": """
        import sys
        def gelu_backward(dout, cache):
            sys.exit(0)
        """,
    "sys_exit_on_import": """
        import sys
        sys.exit(0)
        def gelu_backward(dout, cache):
            return dout
        """,
    "patches_the_grader": """
        import numpy as np
        import minswin.exercises.grader as g
        import minswin.gradcheck as gc
        g.verdict = gc.verdict = lambda *a, **k: "ok"
        g.rel_error = gc.rel_error = lambda *a, **k: 0.0
        g._judge = lambda *a, **k: ("passed", [], "", "", "PASSED: all checks ok")
        def gelu_backward(dout, cache):
            return np.zeros_like(dout)
        """,
    "endless_loop": """
        def gelu_backward(dout, cache):
            while True:
                pass
        """,
    "prints_megabytes": """
        def gelu_backward(dout, cache):
            while True:
                print("x" * 10000)
        """,
    "ctypes_null": """
        import ctypes
        def gelu_backward(dout, cache):
            return ctypes.string_at(0)
        """,
    "sigsegv": """
        import os, signal
        def gelu_backward(dout, cache):
            os.kill(os.getpid(), signal.SIGSEGV)
        """,
    "object_array": """
        import numpy as np
        def gelu_backward(dout, cache):
            return np.empty(dout.shape, dtype=object)
        """,
    # writes a pickled .npz and a status claiming success where the grader reads, then leaves
    "forges_results": """
        import json, os, sys
        import numpy as np
        def gelu_backward(dout, cache):
            work = sys.argv[-1]
            np.savez(os.path.join(work, "grads.npz"),
                     case0=np.array([object()] * 11, dtype=object))
            with open(os.path.join(work, "status.json"), "w") as f:
                json.dump({"load": {"status": "ok"}, "outcomes": [
                    {"kind": "returned", "value": {"array": "case0"}}]}, f)
            os._exit(0)
        """,
}

# (learner file, exit code, words the output must hold)
GRADER_ROWS = [
    ("os_exit_0", 1, ["FAILED", "ended the process (exit code 0)", "os._exit"]),
    ("os_exit_3", 1, ["FAILED", "exit code 3"]),
    ("sys_exit_in_backward", 1, ["SystemExit", "ERROR"]),
    ("sys_exit_on_import", 1, ["SystemExit", "could not import"]),
    ("patches_the_grader", 1, ["FAILED: 0 of 2 checks ok", "all zeros"]),
    ("endless_loop", 1, ["FAILED: timed out after 1 s"]),
    ("prints_megabytes", 1, ["FAILED", "printed more than 1 MB", "bytes left out"]),
    ("ctypes_null", 1, ["FAILED", "killed by SIGSEGV", "string_at"]),
    ("sigsegv", 1, ["FAILED", "killed by SIGSEGV"]),
    ("object_array", 1, ["FAILED", "dtype object"]),
    ("forges_results", 1, ["FAILED", "could not be read", "pickle"]),
]


@pytest.mark.parametrize("name, code, words", GRADER_ROWS, ids=[r[0] for r in GRADER_ROWS])
def test_grader_cannot_be_fooled_or_hung(files, tmp_path, monkeypatch, capsys, name, code,
                                         words):
    monkeypatch.chdir(tmp_path)
    before = snapshot(files["root"], str(tmp_path))
    path = os.path.join(files["learner"], name + ".py")
    # one second only for the endless loop: a busy machine may take longer to start Python
    timeout = "1" if name == "endless_loop" else "60"
    rc, text = run_cli(capsys, ["exercise", "check", "gelu_backward", path, "--timeout", timeout])
    assert rc == code, text
    for w in words:
        assert w in text, (w, text[-2000:])
    assert "PASSED" not in text
    assert os.path.join("minswin", "cli") not in text          # no traceback of the command
    assert snapshot(files["root"], str(tmp_path)) == before


# ---------------------------------------------------------------------------- the CLI

# (id, argv with {names} from `files` and {cwd}, exit code, words, new files allowed in cwd)
CLI_ROWS = [
    # train: a folder that holds a run is never overwritten
    ("train-out-holds-a-run", ["train", *TINY_RUN, "--out", "{run}"], 2,
     ["already holds a run", "--resume", "--out", "never overwritten"], ()),
    ("train-resume-into-another-run", ["train", "--resume", "{last}", "--out", "{other}",
                                       "--no-progress"], 2,
     ["already holds a run (history.json)", "--resume", "--out"], ()),
    ("train-out-is-a-file", ["train", *TINY_RUN, "--out", "{afile}"], 2,
     ["out", "folder", "afile"], ()),
    # train: splits too small for what is asked
    ("train-three-images", ["train", *TINY_RUN, "--data", "{three}", "--out", "{cwd}/r"], 2,
     ["at least one image", "0 val", "0 test"], ()),
    ("train-batch-above-split", ["train", *TINY_RUN, "--batch-size", "65", "--out",
                                 "{cwd}/r"], 2,
     ["--batch-size: expected at most", "64 training images", "65"], ()),
    # train: options
    ("train-epochs-0", ["train", *TINY_RUN, "--epochs", "0", "--out", "{cwd}/r"], 2,
     ["epochs", "positive integer", "0"], ()),
    ("train-batch-0", ["train", *TINY_RUN, "--batch-size", "0", "--out", "{cwd}/r"], 2,
     ["--batch-size: expected a positive integer"], ()),
    ("train-lr-nan", ["train", *TINY_RUN, "--lr", "nan", "--out", "{cwd}/r"], 2,
     ["lr", "finite", "nan"], ()),
    ("train-lr-negative", ["train", *TINY_RUN, "--lr", "-1", "--out", "{cwd}/r"], 2,
     ["lr", ">= 0", "-1"], ()),
    ("train-seed-negative", ["train", *TINY_RUN, "--seed", "-1", "--out", "{cwd}/r"], 2,
     ["seed", "integer >= 0", "-1"], ()),
    ("train-threads-0", ["train", *TINY_RUN, "--threads", "0", "--out", "{cwd}/r"], 2,
     ["threads", "positive integer"], ()),
    ("train-stop-after-0", ["train", *TINY_RUN, "--stop-after", "0", "--out", "{cwd}/r"], 2,
     ["--stop-after: expected a positive integer"], ()),
    ("train-limit-negative", ["train", *TINY_RUN, "--limit", "-5", "--out", "{cwd}/r"], 2,
     ["limit", ">= 0", "-5"], ()),
    ("train-model-unknown", ["train", *TINY_RUN, "--model", "nope", "--out", "{cwd}/r"], 2,
     ["model", "expected one of", "nope"], ()),
    ("train-heads-do-not-divide", ["train", *TINY_RUN, "--num-heads", "5,5", "--out",
                                   "{cwd}/r"], 2, ["--num-heads:", "5 heads do not divide"], ()),
    ("train-window-0", ["train", *TINY_RUN, "--window-size", "0", "--out", "{cwd}/r"], 2,
     ["--window-size: expected a positive integer"], ()),
    ("train-drop-path-2", ["train", *TINY_RUN, "--drop-path-rate", "2", "--out", "{cwd}/r"], 2,
     ["--drop-path-rate: expected a number in [0, 1)", "2.0"], ()),
    ("train-depths-not-ints", ["train", *TINY_RUN, "--depths", "2,x"], 2,
     ["--depths", "comma-separated integers", "2,x"], ()),
    ("train-data-missing", ["train", *TINY_RUN, "--data", "{cwd}/none.npz", "--out",
                            "{cwd}/r"], 2, ["none.npz"], ()),
    ("train-data-a-file", ["train", *TINY_RUN, "--data", "{afile}", "--out", "{cwd}/r"], 2,
     ["data", "expected 'digits', a folder", "afile"], ()),
    # train --resume
    ("resume-missing", ["train", "--resume", "{cwd}/none.safetensors"], 2,
     ["--resume", "no such checkpoint"], ()),
    ("resume-with-config", ["train", "--resume", "{last}", "--config", "digits"], 2,
     ["--config", "not allowed with --resume"], ()),
    ("resume-changed-lr", ["train", "--resume", "{last}", "--lr", "1", "--no-progress"], 2,
     ["lr", "cannot change when resuming", "0.005", "1.0"], ()),
    ("resume-fewer-epochs", ["train", "--resume", "{last}", "--epochs", "0"], 2,
     ["epochs", "positive integer"], ()),
    ("resume-no-config", ["train", "--resume", "{noconfig}", "--out", "{cwd}/r"], 2,
     ["lacks 'config'", "noconfig.safetensors"], ()),
    ("resume-no-model-rng", ["train", "--resume", "{norng}", "--out", "{cwd}/r"], 2,
     ["lacks 'model_rng'", "norng.safetensors"], ()),
    ("resume-config-unknown-field", ["train", "--resume", "{badconfig}", "--out", "{cwd}/r"],
     2, ["training config", "cannot be used", "bogus"], ()),
    ("resume-metadata-not-json", ["train", "--resume", "{notjson}", "--out", "{cwd}/r"], 2,
     ["not a JSON object", "notjson.safetensors"], ()),
    ("resume-plain-weights", ["train", "--resume", "{plain}", "--out", "{cwd}/r"], 2,
     ["no 'minswin.train' metadata", "plain weights cannot be resumed"], ()),
    ("resume-nan-weights", ["train", "--resume", "{nan}", "--out", "{cwd}/r"], 2,
     ["'head.weight'", "4 of 320 values are not finite", "3 NaN, 1 inf"], ()),
    ("resume-nan-optimizer-state", ["train", "--resume", "{nanopt}", "--out", "{cwd}/r"], 2,
     ["cannot be continued", "optimiser state is not finite",
      "'optimizer.exp_avg_sq.head.bias': 2 of 10"], ()),
    ("resume-step-mismatch", ["train", "--resume", "{badstep}", "--out", "{cwd}/r"], 2,
     ["cannot be continued", "step 7 do not fit epochs of 2 steps"], ()),
    ("resume-negative-step", ["train", "--resume", "{negstep}", "--out", "{cwd}/r"], 2,
     ["cannot be continued", "step: expected an integer >= 0", "-1"], ()),
    ("resume-a-pickle", ["train", "--resume", "{model}", "--out", "{cwd}/r"], 2,
     ["PyTorch pickle", "convert_torch_checkpoint.py"], ()),
    ("resume-not-a-checkpoint", ["train", "--resume", "{afile}", "--out", "{cwd}/r"], 2,
     ["expected a .safetensors or .npz"], ()),
    # evaluate
    ("evaluate-missing", ["evaluate", "{cwd}/none.safetensors"], 2,
     ["CHECKPOINT", "no such file"], ()),
    ("evaluate-out-not-png", ["evaluate", "{best}", "-o", "{cwd}/cm.jpg"], 2,
     ["--out", ".png", "cm.jpg"], ()),
    ("evaluate-out-no-folder", ["evaluate", "{best}", "-o", "{cwd}/no/cm.png"], 2,
     ["--out", "existing folder"], ()),
    ("evaluate-batch-0", ["evaluate", "{best}", "--batch-size", "0", "-o", "{cwd}/cm.png"], 2,
     ["--batch-size", "positive integer"], ()),
    ("evaluate-split-unknown", ["evaluate", "{best}", "--split", "dev"], 2,
     ["--split: expected one of train, val, test", "dev"], ()),
    ("evaluate-no-config", ["evaluate", "{noconfig}", "-o", "{cwd}/cm.png"], 2,
     ["lacks 'config'"], ()),
    ("evaluate-plain-weights", ["evaluate", "{plain}", "-o", "{cwd}/cm.png"], 2,
     ["no 'minswin.train' metadata"], ()),
    ("evaluate-garbage", ["evaluate", "{garbage}", "-o", "{cwd}/cm.png"], 2,
     ["not a readable safetensors file"], ()),
    ("evaluate-a-pickle", ["evaluate", "{model}", "-o", "{cwd}/cm.png"], 2,
     ["PyTorch pickle"], ()),
    ("evaluate-nan-weights", ["evaluate", "{nan}", "-o", "{cwd}/cm.png"], 2,
     ["'head.weight'", "4 of 320 values are not finite", "--allow-nonfinite"], ()),
    ("evaluate-nan-weights-allowed", ["evaluate", "{nan}", "--allow-nonfinite", "-o",
                                      "{cwd}/cm.png"], 1,
     ["loss nan", "the loss is nan", "means nothing"], ("cm.png",)),
    ("evaluate-data-no-classes", ["evaluate", "{best}", "--data", "{learner}", "-o",
                                  "{cwd}/cm.png"], 2, ["data", "class sub-folders"], ()),
    ("evaluate-empty-split", ["evaluate", "{best}", "--data", "{three}", "--split", "val",
                              "-o", "{cwd}/cm.png"], 2, ["--split", "val split", "no images"],
     ()),
    # plot (its own options are tested in test_cli_plot.py; here: the checkpoints)
    ("plot-no-config", ["plot", "attention", "--checkpoint", "{noconfig}", "-o",
                        "{cwd}/a.png"], 2, ["lacks 'config'"], ()),
    ("plot-nan-weights", ["plot", "attention", "--checkpoint", "{nan}", "-o", "{cwd}/a.png"],
     2, ["not finite", "'head.weight'", "--allow-nonfinite"], ()),
    ("plot-figure-unknown", ["plot", "nope"], 2, ["FIGURE: expected one of", "nope"], ()),
    ("plot-window-0", ["plot", "mask", "--window", "0", "-o", "{cwd}/m.png"], 2,
     ["window", "positive integer"], ()),
    ("plot-checkpoint-missing", ["plot", "attention", "--checkpoint", "{cwd}/none.safetensors",
                                 "-o", "{cwd}/a.png"], 2, ["no such checkpoint file"], ()),
    ("plot-image-index-without-checkpoint", ["plot", "attention", "--model", "swin_micro",
                                             "--image-index", "0", "-o", "{cwd}/a.png"], 2,
     ["--image-index", "needs a checkpoint"], ()),
    ("plot-stage-9", ["plot", "bias", "--model", "swin_t", "--stage", "9", "-o", "{cwd}/b.png"],
     2,
     ["--stage", "expected 1..4", "9"], ()),
    ("plot-size-0", ["plot", "mask", "--size", "0", "-o", "{cwd}/m.png"], 2,
     ["size", "positive integer"], ()),
    ("plot-window-id-99", ["plot", "mask", "--window-id", "99", "-o", "{cwd}/m.png"], 2,
     ["window_id", "99"], ()),
    ("plot-output-suffix", ["plot", "mask", "-o", "{cwd}/m.txt"], 2, [".png", ".txt"], ()),
    # tour
    ("tour-out-a-file", ["tour", "--out", "{afile}"], 2, ["--out", "not a folder"], ()),
    # exercise
    ("exercise-unknown", ["exercise", "check", "nope", "{afile}"], 2,
     ["no exercise called 'nope'"], ()),
    ("exercise-file-missing", ["exercise", "check", "gelu_backward", "{cwd}/none.py"], 2,
     ["no such file"], ()),
    ("exercise-timeout-0", ["exercise", "check", "gelu_backward", "{afile}", "--timeout", "0"],
     2, ["--timeout", "seconds > 0"], ()),
    ("exercise-timeout-nan", ["exercise", "check", "gelu_backward", "{afile}", "--timeout",
                              "nan"], 2, ["--timeout", "seconds > 0", "nan"], ()),
    ("exercise-start-unknown", ["exercise", "start", "nope", "{cwd}"], 2,
     ["no exercise called 'nope'", "expected one of"], ()),
    ("exercise-start-into-a-file", ["exercise", "start", "gelu_backward", "{afile}"], 2,
     ["DIR", "expected a directory"], ()),
    ("command-unknown", ["nope"], 2, ["COMMAND: expected one of tour", "nope"], ()),
    ("backend-unknown", ["plot", "hierarchy", "-o", "{cwd}/h.png"], 2,
     ["backend", "expected one of", "'nope'"], ()),
]
ENV = {"backend-unknown": {"MINSWIN_BACKEND": "nope"}}


@pytest.mark.parametrize("row", [r[0] for r in CLI_ROWS])
def test_cli_bad_input(files, tmp_path, monkeypatch, capsys, row):
    argv, code, words, allowed = next(r[1:] for r in CLI_ROWS if r[0] == row)
    monkeypatch.chdir(tmp_path)
    for k, v in ENV.get(row, {}).items():
        monkeypatch.setenv(k, v)
    import minswin.backend
    monkeypatch.setattr(minswin.backend, "_default", None)     # read MINSWIN_BACKEND again
    argv = [a.format(cwd=str(tmp_path), **files) for a in argv]
    before = snapshot(files["root"], str(tmp_path))
    rc, text = run_cli(capsys, argv)
    assert rc == code, text
    for w in words:
        assert w in text, (w, text)
    assert "Traceback" not in text
    errors = [line for line in text.splitlines() if "error:" in line]
    assert errors, text                                     # one line says what went wrong
    after = snapshot(files["root"], str(tmp_path))
    new = {p for p in after if p not in before}
    assert {os.path.relpath(p, tmp_path) for p in new} <= set(allowed), new
    assert {p: before[p] for p in before} == {p: after[p] for p in before}


def test_debug_shows_the_traceback(files, tmp_path, monkeypatch, capsys):
    for argv in (["--debug", "evaluate", files["noconfig"]],
                 ["evaluate", files["noconfig"], "--debug"]):
        rc, text = run_cli(capsys, argv)
        assert rc == 2 and "Traceback" in text and "lacks 'config'" in text
    monkeypatch.setenv("MINSWIN_DEBUG", "1")
    rc, text = run_cli(capsys, ["evaluate", files["noconfig"]])
    assert rc == 2 and "Traceback" in text


def test_unexpected_errors_are_one_line_exit_1(monkeypatch, capsys):
    import minswin.cli.tour as tour

    def broken(args):
        raise KeyError("config")
    monkeypatch.setattr(tour, "run", broken)
    rc, text = run_cli(capsys, ["tour"])
    assert rc == 1 and "Traceback" not in text
    assert "unexpected KeyError: config" in text and "--debug" in text


def test_a_machine_without_what_was_asked_is_one_line_exit_2(monkeypatch, capsys):
    import minswin.cli.tour as tour

    def no_gpu(args):
        raise RuntimeError("backend 'cupy' was requested but CuPy finds no GPU")
    monkeypatch.setattr(tour, "run", no_gpu)
    rc, text = run_cli(capsys, ["tour"])
    assert rc == 2 and "Traceback" not in text and "unexpected" not in text
    assert "minswin tour: error: backend 'cupy' was requested" in text


# ---------------------------------------------------------------------------- runs

def test_train_twice_into_one_folder_keeps_the_first_run(files, tmp_path):
    before = snapshot(files["run"])
    with pytest.raises(FileExistsError, match=r"already holds a run.*--resume .*last"):
        train("digits_tiny", out=files["run"], epochs=1, limit=64, **QUIET)
    assert snapshot(files["run"]) == before


def test_resume_into_its_own_folder_is_allowed_and_the_messages_agree(tmp_path):
    """Ctrl-C's message and the resume's say where the run is in the same words."""
    import signal

    from minswin.loss import cross_entropy_forward
    calls, lines = [], []

    def interrupting_loss(logits, labels, eps):
        calls.append(1)
        if len(calls) == 3:                                 # epoch 2 of 2, after batch 1
            signal.raise_signal(signal.SIGINT)
        return cross_entropy_forward(logits, labels, eps)

    out = str(tmp_path / "r")
    with pytest.raises(KeyboardInterrupt):
        train("digits_tiny", out=out, limit=64, loss_fn=interrupting_loss,
              **{**QUIET, "log": lines.append})
    said = [s for s in lines if "interrupted" in s][0]
    assert "(in epoch 2 of 2 after batch 1, step 3)" in said, said
    lines.clear()
    train(resume=os.path.join(out, "last.safetensors"), out=out, **{**QUIET,
                                                                  "log": lines.append})
    assert any("resumed from" in s and "in epoch 2 of 2 after batch 1, step 3" in s
               for s in lines), lines


def test_resume_with_other_threads_warns_before_it_starts(files, tmp_path):
    lines = []
    out = str(tmp_path / "t")
    r = train("digits_tiny", out=out, limit=64, stop_after=1, threads=1, **QUIET)
    train(resume=r.last_path, out=out, threads=2, **{**QUIET, "log": lines.append})
    warn = [i for i, s in enumerate(lines) if s.startswith("warning:")]
    start = [i for i, s in enumerate(lines) if s.startswith("training ")]
    assert warn and start and warn[0] < start[0], lines
    assert "threads=1" in lines[warn[0]] and "--threads 1" in lines[warn[0]]


def test_divergence_after_a_resume_names_no_file_it_did_not_write(files, tmp_path):
    from minswin.loss import cross_entropy_forward
    from minswin.training import TrainingDiverged

    def nan_loss(logits, labels, eps):
        loss, cache = cross_entropy_forward(logits, labels, eps)
        return loss * np.nan, cache

    out = str(tmp_path / "elsewhere")
    with pytest.raises(TrainingDiverged) as e:
        train(resume=files["last"], out=out, epochs=2, loss_fn=nan_loss, **QUIET)
    msg = str(e.value)
    assert "had written no checkpoint yet" in msg and files["last"] in msg
    assert os.path.join(out, "last.safetensors") not in msg


def test_resume_into_a_new_folder_prints_no_nan_for_a_best_checkpoint_it_lacks(files,
                                                                                tmp_path):
    lines = []                          # the run had finished: the resume only tests again
    r = train(resume=files["last"], out=str(tmp_path / "new"), **{**QUIET, "log": lines.append})
    assert r.history["best_val_test_acc"] is None
    with open(tmp_path / "new" / "history.json") as f:
        assert json.load(f, parse_constant=lambda c: pytest.fail(f"{c} in history.json"))
    said = [s for s in lines if s.startswith("best val epoch")][0]
    assert "nan" not in said, said
    assert said.startswith("best val epoch 1") and "not tested" in said, said


def test_too_small_data_is_refused_before_anything_is_written(files, tmp_path):
    out = tmp_path / "never"
    with pytest.raises(ValueError, match=r"3 images|at least one image in every split"):
        train("digits_tiny", out=str(out), data=files["three"], **QUIET)
    assert not out.exists()


def test_checkpoints_have_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        for name in ("a.safetensors", "b.npz"):
            save_checkpoint(str(tmp_path / name), {"w": np.ones(3, np.float32)})
            assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o644, name
    finally:
        os.umask(old)


DISK_FULL = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)      # writes past the limit fail with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
{body}
"""


def _run_with_file_limit(body, limit, cwd):
    code = DISK_FULL.format(limit=limit, body=textwrap.dedent(body))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]
        + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120)


@pytest.mark.parametrize("ext", [".safetensors", ".npz"])
def test_disk_full_while_saving_is_one_line_and_keeps_the_old_file(tmp_path, ext):
    path = tmp_path / f"w{ext}"
    save_checkpoint(str(path), {"w": np.zeros(10, np.float32)})
    before = snapshot(str(tmp_path))
    r = _run_with_file_limit(f"""
        import numpy as np
        from minswin.checkpoint import save_checkpoint
        try:
            save_checkpoint({str(path)!r}, {{"w": np.zeros(100000, np.float32)}})
        except OSError as err:
            print("OSError:", err)
        """, 4096, str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "OSError: path: could not write" in r.stdout and "File too large" in r.stdout
    assert "unchanged" in r.stdout and "Traceback" not in r.stdout + r.stderr
    assert snapshot(str(tmp_path)) == before                  # old file kept, no .tmp left


def test_disk_full_while_training_exits_1_with_one_line(tmp_path):
    r = _run_with_file_limit("""
        from minswin.cli import main
        sys.exit(main(["train", "--config", "digits_tiny", "--epochs", "1", "--limit", "64",
                       "--no-progress", "--out", "r"]))
        """, 100_000, str(tmp_path))
    assert r.returncode == 1, r.stdout + r.stderr
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in r.stderr, r.stderr
    assert err[0].startswith("minswin train: path: could not write")
    assert "training stopped (after epoch 1 of 1, step 2)" in err[0]
    assert "no checkpoint had been written yet" in err[0]
    assert not (tmp_path / "r").exists()      # it wrote nothing: the folder it made is gone


def test_history_that_cannot_be_written_is_a_training_failure(tmp_path, capsys, monkeypatch):
    import minswin.training as training
    out = tmp_path / "r"
    real = training.write_atomically

    def no_room_for_history(path, write):
        if path.endswith("history.json"):
            raise OSError(28, "No space left on device")
        return real(path, write)
    monkeypatch.setattr(training, "write_atomically", no_room_for_history)
    rc, text = run_cli(capsys, ["train", *TINY_RUN, "--out", str(out)])
    assert rc == 1 and "Traceback" not in text, text
    line = [s for s in text.splitlines() if s.startswith("minswin train:")]
    assert len(line) == 1, text
    assert "could not write" in line[0] and "history.json" in line[0]
    assert f"the run's checkpoints are in {out} (test accuracy: " in line[0]
    assert (out / "last.safetensors").exists() and not (out / "history.json").exists()


# ---------------------------------------------------------------------------- weights

def test_nonfinite_weights_are_refused_then_allowed_on_request(files):
    model = create_model("swin_digits", num_classes=10, embed_dim=16, depths=(2, 1),
                         num_heads=(2, 2))
    state = load_checkpoint(files["nan"])
    state = {k: v for k, v in state.items() if not k.startswith("optimizer.")}
    before = model_state(model)
    with pytest.raises(ValueError, match=r"'head.weight': 4 of 320 values are not finite "
                                         r"\(3 NaN, 1 inf\).*allow_nonfinite=True"):
        model.load_state_dict(state)
    assert_same_state(before, model_state(model))
    model.load_state_dict(state, allow_nonfinite=True)
    assert np.isnan(model.params["head.weight"]).sum() == 3


def test_nonfinite_weights_are_refused_by_swin_v2_too():
    model = create_model("swinv2_digits", num_classes=4, embed_dim=8, depths=(2, 1),
                         num_heads=(2, 2))
    state = {k: np.array(v, copy=True) for k, v in model.state_dict().items()}
    state["norm.weight"][0] = np.inf
    before = model_state(model)
    with pytest.raises(ValueError, match=r"'norm.weight': 1 of 16 values are not finite"):
        model.load_state_dict(state)
    assert_same_state(before, model_state(model))
    model.load_state_dict(state, allow_nonfinite=True)
    assert np.isinf(model.params["norm.weight"][0])


def test_every_loader_that_advises_the_opt_out_has_it(files, tmp_path, monkeypatch, capsys):
    """The refusal names allow_nonfinite=True / --allow-nonfinite: each loader that can print
    it takes that opt-out (from_pretrained on both kinds of minswin file, and at another
    dtype; minswin plot --checkpoint); `train --resume` has none, so it advises none."""
    from minswin import from_pretrained, save_pretrained
    model = create_model("swin_digits", num_classes=10, embed_dim=16, depths=(2, 1),
                         num_heads=(2, 2))
    model.params["head.weight"][0, 0] = np.nan
    save_pretrained(model, str(tmp_path / "folder"))
    sources = [files["nan"], str(tmp_path / "folder"),
               str(tmp_path / "folder" / "model.safetensors")]
    for path in sources:
        for dtype in ("float32", "float64"):
            with pytest.raises(ValueError, match=r"not finite.*allow_nonfinite=True"):
                from_pretrained(path, dtype=dtype, verbose=False)
            loaded = from_pretrained(path, dtype=dtype, verbose=False, allow_nonfinite=True)
            assert loaded.dtype == dtype and np.isnan(loaded.params["head.weight"]).any()
    monkeypatch.chdir(tmp_path)
    rc, text = run_cli(capsys, ["plot", "attention", "--checkpoint", files["nan"],
                                "--allow-nonfinite", "-o", str(tmp_path / "a.png")])
    assert rc == 0 and (tmp_path / "a.png").exists(), text
    rc, text = run_cli(capsys, ["train", "--resume", files["nan"], "--out",
                                str(tmp_path / "r")])
    assert rc == 2 and "weights are not finite" in text and "'head.weight'" in text, text
    assert "allow" not in text, text


# ---------------------------------------------------------------------------- the API

def _tiny(**kw):
    return create_model("swin_digits", num_classes=4, embed_dim=8, depths=(2, 1),
                        num_heads=(2, 2), **kw)


def _x(model, n=2):
    return np.random.default_rng(0).standard_normal((n, 16, 16, 3)).astype(model.dtype)


def _backward_before_forward(m):
    m.backward(np.ones((2, 4), np.float32))


def _dlogits_wrong_batch(m):
    m.forward(_x(m))
    m.backward(np.ones((3, 4), np.float32))


def _dlogits_wrong_classes(m):
    m.forward(_x(m))
    m.backward(np.ones((2, 5), np.float32))


def _dlogits_not_an_array(m):
    m.forward(_x(m))
    m.backward([[1.0] * 4] * 2)


def _replace_a_param(m):
    m.params["head.weight"] = np.zeros_like(m.params["head.weight"])


def _replace_a_grad(m):
    m.grads["head.bias"] = np.ones(4, np.float32)


def _delete_a_param(m):
    del m.params["head.bias"]


def _update_params(m):
    m.params.update({"head.bias": np.ones(4, np.float32)})


def _pop_a_param(m):
    m.params.pop("head.bias")


def _add_a_param(m):
    m.params["extra"] = np.ones(3, np.float32)


# (id, action on a fresh model, error type, words); the model must be unchanged afterwards
API_ROWS = [
    ("backward-before-forward", _backward_before_forward, RuntimeError,
     ["backward", "call model.forward(x) first"]),
    ("dlogits-wrong-batch", _dlogits_wrong_batch, ValueError,
     ["dlogits", "expected shape (2, 4)", "(3, 4)"]),
    ("dlogits-wrong-classes", _dlogits_wrong_classes, ValueError,
     ["dlogits", "expected shape (2, 4)", "(2, 5)"]),
    ("dlogits-a-list", _dlogits_not_an_array, TypeError, ["dlogits", "expected an array"]),
    ("replace-a-param", _replace_a_param, TypeError, ["params", "write into them",
                                                       "[...] = value"]),
    ("replace-a-grad", _replace_a_grad, TypeError, ["grads", "write into them"]),
    ("delete-a-param", _delete_a_param, TypeError, ["params", "cannot be replaced"]),
    ("update-params", _update_params, TypeError, ["params", "write into them"]),
    ("pop-a-param", _pop_a_param, TypeError, ["params", "write into them"]),
    ("add-a-param", _add_a_param, TypeError, ["params", "added"]),
]


@pytest.mark.parametrize("action, err, words", [r[1:] for r in API_ROWS],
                         ids=[r[0] for r in API_ROWS])
def test_api_misuse_is_a_named_error_and_changes_nothing(action, err, words):
    model = _tiny()
    before = model_state(model)
    keys = list(model.params)
    with pytest.raises(err) as e:
        action(model)
    for w in words:
        assert w in str(e.value), (w, str(e.value))
    assert list(model.params) == keys
    assert_same_state(before, model_state(model))


def test_writing_into_params_still_works_and_reaches_forward():
    model = _tiny()
    x = _x(model)
    model.params["head.bias"][...] = 5.0                     # write into: fine
    model.params["head.weight"] *= 0.0                       # in place: fine
    assert np.allclose(model.forward(x), 5.0)
    assert model.state_dict()["head.bias"] is model.params["head.bias"]
    import copy
    twin = copy.deepcopy(model)
    assert np.array_equal(twin.forward(x), model.forward(x))


# (id, keyword arguments of create_model, words)
CONFIG_ROWS = [
    ("mlp-ratio-too-small", dict(mlp_ratio=0.01), ["mlp_ratio", "hidden layer", "0.01"]),
    ("mlp-ratio-nan", dict(mlp_ratio=float("nan")), ["mlp_ratio", "positive number"]),
    ("mlp-ratio-inf", dict(mlp_ratio=float("inf")), ["mlp_ratio", "positive number"]),
    ("seed-negative", dict(seed=-1), ["seed", "integer >= 0", "-1"]),
    ("seed-float", dict(seed=1.5), ["seed", "integer >= 0", "1.5"]),
]


@pytest.mark.parametrize("kw, words", [r[1:] for r in CONFIG_ROWS],
                         ids=[r[0] for r in CONFIG_ROWS])
def test_config_values_that_cannot_make_a_model(kw, words):
    with pytest.raises(ValueError) as e:
        create_model("swin_digits", num_classes=4, **kw)
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_grader_timeout_is_checked(files):
    from minswin.exercises import grade_file
    for bad in (0, -1, float("nan"), float("inf"), "10", True):
        with pytest.raises(ValueError, match="timeout: expected a number of seconds > 0"):
            grade_file("gelu_backward", files["afile"], timeout=bad)
