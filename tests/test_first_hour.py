"""A learner's first hour (issue 23): forwards without caches, commands that answer in one line
naming the flag typed, memory refused before it is allocated, every shipped model a name, short
runs that learn, and the small words."""
import json
import os
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

import minswin
from minswin.cli import build_parser, main
from minswin.grad_mode import NO_CACHE
from minswin.memory import (
    activation_floats,
    available_bytes,
    check_batch_fits,
    largest_batch,
    parameter_counts,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def modules(model):
    """The model and every module under it."""
    out, todo = [], [model]
    while todo:
        m = todo.pop()
        out.append(m)
        todo += list(m.children.values())
    return out


def cached_bytes(model):
    """Bytes of the arrays the modules' caches hold (what a forward kept for a backward)."""
    seen, total = set(), 0

    def walk(obj):
        nonlocal total
        if isinstance(obj, np.ndarray):
            base = obj if obj.base is None else obj.base
            if id(base) not in seen and isinstance(base, np.ndarray):
                seen.add(id(base))
                total += base.nbytes
        elif isinstance(obj, (tuple, list)):
            for o in obj:
                walk(o)
        elif hasattr(obj, "_asdict"):
            walk(tuple(obj))
        elif hasattr(obj, "__dict__"):
            walk(tuple(vars(obj).values()))
    for m in modules(model):
        if m._cache is not NO_CACHE:
            walk(m._cache)
    return total


# ---------------------------------------------------------------------------- no_grad

@pytest.mark.parametrize("name", ["swin_micro", "swinv2_digits"])
def test_no_grad_gives_the_same_logits_and_keeps_no_cache(name):
    model = minswin.create_model(name, num_classes=5).eval()
    c = model.config
    x = np.random.default_rng(0).standard_normal((2, c.img_size, c.img_size, 3)).astype("f4")
    ref = model.forward(x)
    assert cached_bytes(model) > x.nbytes                  # caches are real and large
    with minswin.no_grad():
        assert not minswin.is_grad_enabled()
        out = model.forward(x)
    assert minswin.is_grad_enabled()
    np.testing.assert_array_equal(out, ref)
    assert cached_bytes(model) == 0
    assert all(m._cache in (None, NO_CACHE) for m in modules(model))
    with pytest.raises(RuntimeError, match="no_grad"):     # a named error, not a crash
        model.backward(np.ones_like(out))
    # the attention probabilities, and nothing else, on request
    blk = model.layers[0].blocks[-1]
    with pytest.raises(RuntimeError, match="keep_attention=True"):
        blk.attention_weights()
    with minswin.no_grad(keep_attention=True):
        model.forward(x)
    assert blk.attention_weights().shape[0] == 2
    model.forward(x)                                       # outside: caches again
    model.zero_grad()
    model.backward(np.ones_like(ref))
    assert any(np.abs(g).sum() > 0 for g in model.grads.values())


def test_no_grad_nests_and_restores_after_an_error():
    with minswin.no_grad():
        with minswin.no_grad(keep_attention=True):
            assert not minswin.is_grad_enabled()
        assert not minswin.is_grad_enabled()
    assert minswin.is_grad_enabled()
    with pytest.raises(ZeroDivisionError):
        with minswin.no_grad():
            1 / 0
    assert minswin.is_grad_enabled()
    with pytest.raises(TypeError, match="keep_attention"):
        minswin.no_grad(keep_attention="yes")


def test_eval_mode_keeps_caches_so_a_gradient_check_still_works():
    from minswin.gradcheck import check_module
    model = minswin.create_model("swin_micro", num_classes=3, dtype="float64").eval()
    x = np.random.default_rng(1).standard_normal((1, 32, 32, 3))
    report = check_module(model, x, wrt=["x", "head.weight",
                                         "layers.0.blocks.1.attn.qkv.weight"])
    assert report.passed and len(report.rows) == 3, report


def test_no_grad_forward_allocates_far_less():
    model = minswin.create_model("swin_micro", num_classes=10).eval()
    x = np.random.default_rng(0).standard_normal((8, 32, 32, 3)).astype("f4")
    model.forward(x[:1])                                   # masks and tables built once
    peaks = {}
    for mode in ("caches", "no_grad"):
        tracemalloc.start()
        if mode == "no_grad":
            with minswin.no_grad():
                model.forward(x)
        else:
            model.forward(x)
        peaks[mode] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        with minswin.no_grad():                            # drop the caches in between
            model.forward(x[:1])
    assert peaks["no_grad"] < 0.5 * peaks["caches"], peaks


def test_no_grad_runs_a_large_batch_in_pieces(monkeypatch):
    import minswin.memory as memory
    model = minswin.create_model("swin_micro", num_classes=4).eval()
    x = np.random.default_rng(0).standard_normal((10, 32, 32, 3)).astype("f4")
    ref = model.forward(x)
    per_image = activation_floats(model.config, "no_grad") * 4
    monkeypatch.setattr(memory, "PIECE_BYTES", 3 * per_image)   # pieces of 3 images
    assert memory.no_grad_pieces(model.config, 10, "float32") is None     # caches: whole
    calls = []
    real = type(model.patch_embed).forward
    monkeypatch.setattr(type(model.patch_embed), "forward",
                        lambda self, x: calls.append(len(x)) or real(self, x))
    with minswin.no_grad():
        assert memory.no_grad_pieces(model.config, 10, "float32") == \
            [(0, 3), (3, 6), (6, 9), (9, 10)]
        out = model.forward(x)
    assert calls == [3, 3, 3, 1]
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
    calls.clear()
    with minswin.no_grad(keep_attention=True):             # the pictures need one batch
        model.forward(x)
    assert calls == [10]


def test_evaluation_runs_without_caches(monkeypatch):
    pytest.importorskip("sklearn")
    from minswin.training import evaluate_split, load_data, make_config
    model = minswin.pretrained("swin_digits")
    ds = load_data(make_config("digits"), 16)
    evaluate_split(model, ds.test._replace(x=ds.test.x[:20], y=ds.test.y[:20]))
    assert cached_bytes(model) == 0


# ---------------------------------------------------------------------------- the CLI

def run_main(argv, capsys):
    """(exit code, stdout, stderr) of `minswin argv` in this process."""
    try:
        rc = main(argv)
    except SystemExit as exc:                              # argparse's errors and --help
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


BAD = [
    # (argv, words the one line must hold)
    (["train", "--lr", "abc"], ["minswin train: error: --lr: expected a number, got 'abc'"]),
    (["train", "--depths", "2,x"], ["--depths: expected comma-separated integers", "'2,x'"]),
    (["train", "--dtype", "float16"], ["--dtype: expected one of float32, float64",
                                       "'float16'"]),
    (["train", "--config", "nope"], ["--config: expected one of digits", "'nope'"]),
    (["train", "--epochs"], ["--epochs: expected a value after it, got none"]),
    (["train", "--batch", "x"], ["--batch", "expected an integer", "'x'"]),   # abbreviated
    (["evaluate", "--split", "nope"], ["minswin evaluate: error: --split: expected one of "
                                       "train, val, test, got 'nope'"]),
    (["evaluate", "--batch-size", "0"], ["--batch-size: expected a positive integer, got 0"]),
    (["nope"], ["minswin: error: COMMAND: expected one of tour, plot", "got 'nope'"]),
    ([], ["COMMAND: expected a value, got none"]),
    (["exercise", "nope"], ["minswin exercise: error: ACTION: expected one of list, start, "
                            "check, got 'nope'"]),
    (["exercise", "check"], ["minswin exercise check: error: NAME, FILE: expected a value"]),
    (["exercise", "check", "layernorm_backward", "."], ["FILE: expected your "
                                                         "ex_layernorm_backward.py, got the "
                                                         "folder '.'"]),
    (["tour", "--bogus"], ["minswin tour: error: unknown argument --bogus", "minswin tour "
                                                                            "--help"]),
    (["plot", "attention", "--head", "9"], ["minswin plot: error: --head: expected 0 <= head",
                                            "got 9"]),
    (["plot", "attention", "--model", "nosuch"], ["--model: expected one of", "'nosuch'"]),
    (["plot", "attention", "--checkpoint", "notes.txt"], ["--checkpoint: expected a "
                                                          ".safetensors", "'notes.txt'"]),
    (["plot", "nope"], ["minswin plot: error: FIGURE: expected one of", "got 'nope'"]),
    (["plot", "mask", "--dpi", "x"], ["--dpi: expected an integer, got 'x'"]),
    (["train", "--config", "digits_tiny", "--limit", "3"],
     ["--batch-size (not given): expected at most the 3 training images"]),
]


@pytest.mark.parametrize("argv,words", BAD, ids=[" ".join(a) or "(none)" for a, _ in BAD])
def test_every_bad_input_is_one_line_naming_the_flag(argv, words, capsys, tmp_path,
                                                     monkeypatch):
    if argv[:1] == ["train"] and "sklearn" not in sys.modules:
        pytest.importorskip("sklearn")
    monkeypatch.chdir(tmp_path)
    rc, out, err = run_main(argv, capsys)
    assert rc == 2, (rc, err)
    lines = err.splitlines()
    assert len(lines) == 1, err
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert "usage:" not in err and "Traceback" not in err
    assert os.listdir(tmp_path) == []                      # nothing written


def _optionals(parser, prog="minswin"):
    """(prog, action) for every option of every command and sub-command."""
    import argparse
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _optionals(sub, f"{prog} {name}")
        elif action.option_strings and not isinstance(
                action, (argparse._HelpAction, argparse._VersionAction)):
            yield prog, action


def test_every_option_has_a_meaning_and_its_default_in_help(capsys):
    parser = build_parser()
    seen = 0
    for prog, action in _optionals(parser):
        seen += 1
        flag = action.option_strings[-1]
        assert action.help and action.help.strip(), f"{prog} {flag} has no help"
        switch = action.nargs == 0                         # store_true: off unless given
        assert switch or "default" in action.help.lower() or action.default is not None, \
            f"{prog} {flag} shows no default"
    assert seen >= 40
    rc, out, _ = run_main(["train", "--help"], capsys)
    assert rc == 0
    flat = " ".join(out.split())
    assert "--lr LR peak learning rate (default: the config's; digits: 0.002)" in flat
    assert "--depths DEPTHS blocks per stage, e.g. 2,2 (default: the config's; digits: 2,2)" \
        in flat
    rc, out, _ = run_main(["plot", "--help"], capsys)
    flat = " ".join(out.split())
    assert "--dpi DPI resolution of PNG output, dots per inch (default: 130)" in flat


def test_a_closed_pipe_ends_quietly(tmp_path):
    read, write = os.pipe()
    os.close(read)                                         # the reader is gone already
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-m", "minswin", "exercise", "list"], stdout=write,
                          stderr=subprocess.PIPE, text=True, env=env, timeout=120)
    os.close(write)
    assert proc.stderr == ""
    assert proc.returncode == 141


# ---------------------------------------------------------------------------- memory

@pytest.fixture
def capped():
    """An address-space limit 3 GiB above what this process maps now, for the test's length:
    were a refusal to regress, the allocation fails with a MemoryError here instead of
    taking the shared machine's memory."""
    resource = pytest.importorskip("resource")
    from minswin.memory import _vm_size
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = _vm_size() + 3 * 1024 ** 3
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def test_parameter_count_is_the_model_s_own():
    for name in ("swin_t", "swin_micro", "swin_digits"):
        assert sum(parameter_counts(minswin.get_config(name)).values()) == \
            minswin.create_model(name).num_params()
    v2 = minswin.create_model("swinv2_digits").num_params()
    assert abs(sum(parameter_counts(minswin.get_config("swinv2_digits")).values()) - v2) \
        < 0.02 * v2


@pytest.mark.parametrize("mode", ["caches", "no_grad", "train"])
def test_activation_estimate_is_near_the_measured_peak(mode):
    model = minswin.create_model("swin_micro", num_classes=10).train()
    B = 8
    x = np.random.default_rng(0).standard_normal((B, 32, 32, 3)).astype("f4")
    with minswin.no_grad():
        model.forward(x[:1])                               # masks and tables built once
    tracemalloc.start()
    if mode == "no_grad":
        with minswin.no_grad():
            out = model.forward(x)
    else:
        out = model.forward(x)
        if mode == "train":
            model.backward(np.ones_like(out))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    est = activation_floats(model.config, mode) * 4 * B
    assert 0.6 < peak / est < 1.6, (peak, est)


def test_models_bigger_than_the_machine_are_refused_before_allocating(capped, tmp_path,
                                                                     monkeypatch):
    monkeypatch.setenv("MINSWIN_MEMORY", "4G")
    tracemalloc.start()
    with pytest.raises(ValueError, match=r"depths \[1000, 1000, 1000, 1000\].*parameters.*"
                                         r"GiB.*4\.0 GiB available"):
        minswin.create_model("swin_t", depths=(1000,) * 4)
    with pytest.raises(ValueError, match=r"num_classes 1000000000 makes a model of about"):
        minswin.create_model("swin_t", num_classes=10 ** 9)
    assert tracemalloc.get_traced_memory()[1] < 50e6       # refused, not attempted
    tracemalloc.stop()
    # a 2 KB config.json
    folder = tmp_path / "big"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "model_type": "swin", "embed_dim": 96, "depths": [1000] * 4,
        "num_heads": [3, 6, 12, 24], "window_size": 7, "image_size": 224, "patch_size": 4,
        "num_channels": 3, "mlp_ratio": 4.0}))
    from minswin.checkpoint import save_checkpoint
    save_checkpoint(str(folder / "model.safetensors"), {"x": np.zeros(1, "f4")})
    with pytest.raises(ValueError, match="depths"):
        minswin.from_pretrained(str(folder), verbose=False)


def test_a_checkpoint_asking_for_a_huge_model_is_refused_in_one_line(capped, tmp_path, capsys,
                                                                     monkeypatch):
    pytest.importorskip("sklearn")
    from minswin.checkpoint import load_checkpoint, save_checkpoint
    from minswin.training import META_KEY
    from minswin.weights import pretrained_path
    state, meta = load_checkpoint(pretrained_path("swin_digits"), with_metadata=True)
    m = json.loads(meta[META_KEY])
    m["config"]["model_overrides"] = {"depths": [400, 400], "embed_dim": 256,
                                      "num_heads": [8, 16]}
    path = str(tmp_path / "big.safetensors")
    save_checkpoint(path, state, {META_KEY: json.dumps(m)})
    monkeypatch.setenv("MINSWIN_MEMORY", "2G")
    rc, out, err = run_main(["evaluate", path], capsys)
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert "depths [400, 400] at embed_dim 256" in err and "parameters" in err
    assert "MemoryError" not in err


def test_train_refuses_what_cannot_fit_before_writing_anything(capped, tmp_path, capsys,
                                                               monkeypatch):
    pytest.importorskip("sklearn")
    out = tmp_path / "run"
    rc, _, err = run_main(["train", "--img-size", "30000", "--out", str(out)], capsys)
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("minswin train: error: --img-size 30000: a training step needs "
                          "about"), err
    assert "GiB of activations per image" in err and not out.exists()
    # a batch that would not fit names the largest that would
    cfg = minswin.get_config("swin_digits")                # checked before the data are read
    _, est = largest_batch(cfg, "float32", "train", optimizer_slots=2)
    room = est.weights_bytes + 40 * est.per_image_bytes
    monkeypatch.setenv("MINSWIN_MEMORY", str(int(room / 0.8)))
    rc, _, err = run_main(["train", "--out", str(out)], capsys)      # batch 64
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert "--batch-size 64: a training step would need about" in err
    assert "expected --batch-size 40 or less" in err or "expected --batch-size 39 or less" \
        in err, err
    assert not out.exists()


def test_evaluation_batch_is_fitted_or_refused(capsys, monkeypatch, tmp_path):
    pytest.importorskip("sklearn")
    from minswin.training import eval_batch_size
    model = minswin.pretrained("swin_digits")
    assert eval_batch_size(model) == 256
    _, est = largest_batch(model.config, "float32", "no_grad")
    monkeypatch.setenv("MINSWIN_MEMORY", str(int((est.weights_bytes
                                                  + 50 * est.per_image_bytes) / 0.8)))
    assert eval_batch_size(model) in (49, 50)              # fewer, not killed
    with pytest.raises(ValueError, match=r"--eval-batch-size 300: a forward pass would need"):
        eval_batch_size(model, 300, flag="--eval-batch-size")
    monkeypatch.chdir(tmp_path)
    rc, out, err = run_main(["evaluate", "--batch-size", "300"], capsys)
    assert rc == 2 and "--batch-size 300" in err and len(err.splitlines()) == 1
    rc, out, err = run_main(["evaluate"], capsys)          # the fitted batch: it runs
    assert rc == 0, err


def test_available_memory_reads_the_machine_or_the_override(monkeypatch):
    monkeypatch.delenv("MINSWIN_MEMORY", raising=False)
    assert available_bytes() > 0
    monkeypatch.setenv("MINSWIN_MEMORY", "512M")
    assert available_bytes() == 512 * 1024 ** 2
    monkeypatch.setenv("MINSWIN_MEMORY", "lots")
    with pytest.raises(ValueError, match="MINSWIN_MEMORY: expected a number of bytes"):
        available_bytes()
    monkeypatch.setenv("MINSWIN_MEMORY", "1G")
    with pytest.raises(ValueError, match=r"--img-size 224: a forward pass needs"):
        check_batch_fits(minswin.get_config("swin_l"), 1, mode="no_grad", optimizer_slots=0)


def test_swin_t_on_the_digits_says_why_it_is_a_bad_idea():
    from minswin.training import make_config, upsampling_warning
    warn = upsampling_warning(make_config("digits", model="swin_t"),
                              minswin.get_config("swin_t"))
    assert warn.startswith("warning: --model swin_t resizes the 8x8 digits to 224x224")
    assert "\n" not in warn
    assert upsampling_warning(make_config("digits"), minswin.get_config("swin_digits")) is None


# ---------------------------------------------------------------------------- names

@pytest.mark.parametrize("name", ["swin_digits", "swinv2_digits"])
def test_every_shipped_model_is_a_name(name, capsys, tmp_path, monkeypatch):
    pytest.importorskip("sklearn")
    model = minswin.pretrained(name)
    assert model.labels == [str(d) for d in range(10)]
    monkeypatch.chdir(tmp_path)
    rc, out, err = run_main(["evaluate", name], capsys)
    assert rc == 0, err
    info = minswin.pretrained_info(name)
    assert f"the shipped {name} model" in out
    assert f"accuracy: {100 * info['test_accuracy']:.1f}%" in out
    # `--model NAME` draws the shipped model's trained weights where they mean something
    rc, out, err = run_main(["plot", "attention" if name == "swin_digits" else "cpb",
                             "--model", name, "-o", "a.png"], capsys)
    assert rc == 0, err
    assert os.path.isfile("a.png")


def test_plot_model_name_means_the_trained_weights(monkeypatch, capsys, tmp_path):
    import minswin.viz as viz
    seen = {}
    monkeypatch.setattr(viz, "plot_relative_position_bias",
                        lambda table, **kw: seen.update(kw=kw, table=table) or
                        __import__("matplotlib.figure").figure.Figure())
    monkeypatch.chdir(tmp_path)
    rc, _, err = run_main(["plot", "bias", "--model", "swin_digits", "-o", "b.png"], capsys)
    assert rc == 0, err
    trained = minswin.pretrained("swin_digits")
    np.testing.assert_array_equal(
        seen["table"], trained.params["layers.0.blocks.1.attn.relative_position_bias_table"])
    assert "trained" in seen["kw"]["name"]


# ---------------------------------------------------------------------------- short runs

def test_warm_up_is_a_fraction_of_the_run_and_the_first_step_learns():
    from minswin.optim import cosine_lr
    from minswin.training import MAX_WARMUP_FRACTION, lr_at, make_config
    short = make_config("digits", epochs=1)                # 2 warm-up epochs asked
    lrs = [lr_at(short, s, 10) for s in range(10)]
    assert lrs[0] > 0
    assert max(lrs) == pytest.approx(short.lr)             # reached within the run
    assert lrs.index(max(lrs)) <= MAX_WARMUP_FRACTION * 10
    # the default recipe is long enough: after its 2 warm-up epochs the schedule is as before
    d = make_config("digits")
    for s in (2 * 23, 500, 70 * 23 - 1):
        assert lr_at(d, s, 23) == cosine_lr(s, base_lr=d.lr, total_steps=70 * 23,
                                            warmup_steps=46, min_lr=d.min_lr)
    assert lr_at(d, 0, 23) == pytest.approx(d.lr * 1e-3)  # the official 5e-7 / 5e-4


# ---------------------------------------------------------------------------- small words

def test_plurals_and_whole_epochs_and_one_path_per_figure(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from minswin.training import plot_history, plural
    assert plural(1, "epoch") == "1 epoch" and plural(2, "step") == "2 steps"
    figs = []
    monkeypatch.setattr(Figure, "savefig",                    # writes an empty file: the
                        lambda self, *a, **k: (figs.append(self),   # atomic save renames it
                                               open(a[0], "wb").close()))
    plot_history({"epochs": [dict(epoch=e, train_loss=1.0, val_loss=1.0, train_acc=.5,
                                  val_acc=.5) for e in (1, 2)]}, str(tmp_path / "c.png"))
    for ax in figs[0].axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
    monkeypatch.undo()
    from minswin.viz.notebook import show
    monkeypatch.setenv("MINSWIN_FIGURES", str(tmp_path))
    fig = Figure()
    fig.subplots()
    path = show(fig, "x.png")
    assert isinstance(path, str) and os.path.isfile(path)
    assert hasattr(path, "_ipython_display_")              # a notebook does not echo it


def test_running_out_of_memory_past_the_estimate_is_one_line(monkeypatch, capsys):
    import minswin.cli.tour as tour_cli

    def boom(args):
        raise MemoryError("Unable to allocate 3.00 GiB for an array")
    monkeypatch.setattr(tour_cli, "run", boom)
    rc, _, err = run_main(["tour"], capsys)
    assert rc == 1 and len(err.splitlines()) == 1, err
    assert "out of memory (Unable to allocate 3.00 GiB" in err and "bug" not in err
