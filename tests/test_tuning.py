"""The fast tier's tuning (minswin/fast/tuning.py): every candidate computes the same numbers,
and the choosing, caching and switching work, without depending on any real timing (the
timer is replaced by fixed times wherever a choice is checked)."""
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import minswin
from minswin import tiers
from minswin.fast import parallel, tuning
from minswin.ops.masks import attention_mask

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EVERY_CANDIDATE = [(p, c) for p in tuning.DEFAULTS for c in tuning.candidates(p)[1:]]


@pytest.fixture
def tuned(tmp_path, monkeypatch):
    """Tuning on, its cache in a fresh folder, nothing remembered from before; restored after."""
    monkeypatch.setenv(tuning.CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(tuning, "_choices", None)
    monkeypatch.setattr(tuning, "_fingerprint", None)
    monkeypatch.setattr(tuning, "_warned", False)
    monkeypatch.setattr(tuning, "busy", lambda: False)
    tuning.set_enabled(True)
    yield tmp_path
    tuning.set_enabled(None)


def fake_times(monkeypatch, *series):
    """best_times returns these {name: seconds} in turn (and fails if called once more)."""
    left = list(series)

    def best_times(trials):
        assert left, "timed more often than expected"
        times = left.pop(0)
        assert list(times) == list(trials)
        return times
    monkeypatch.setattr(tuning, "best_times", best_times)
    return left


def choose(name="linear_forward", shape=(1024, 96, 384)):
    return tuning.pick(name, shape, np.float32, lambda c: lambda: None)


# ---------------------------------------------------------------------------- same numbers

def run_step(model, x):
    model.zero_grad()
    out = model.forward(x)
    dx = model.backward(np.cos(np.arange(out.size)).reshape(out.shape).astype(x.dtype))
    return [out, dx] + [g.copy() for g in model.grads.values()]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("product,candidate", EVERY_CANDIDATE)
def test_every_candidate_gives_the_defaults_numbers_through_a_whole_model(product, candidate,
                                                                          dtype):
    """A training step of a small Swin (both attention kinds, merging, the MLPs) with one
    candidate forced: the output, dx and every gradient equal the defaults' to round-off."""
    model = minswin.create_model("swin_micro", num_classes=5, dtype=np.dtype(dtype).name,
                                 drop_path_rate=0.0)       # no random masks: two runs alike
    model.train()
    x = np.random.default_rng(3).standard_normal((3, 32, 32, 3)).astype(dtype)
    previous = minswin.use_fast(True)
    try:
        want = run_step(model, x)
        with tuning.forced(**{product: candidate}):
            got = run_step(model, x)
    finally:
        minswin.use_fast(previous)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol * float(np.abs(w).max()),
                                   err_msg=f"{product}={candidate}: array {i}")


@pytest.mark.parametrize("product,candidate", EVERY_CANDIDATE)
def test_every_candidate_matches_the_plain_linear_and_attention(product, candidate, rng):
    """Op by op against the plain tier, float64: the linear (bias or not, 3-D input) and the
    shifted-window attention, forward and backward."""
    r = lambda *s: rng.standard_normal(s)                  # noqa: E731
    x, w, b = r(2, 9, 5), r(7, 5), r(7)
    M, nH, C = 2, 2, 8
    mask = attention_mask(4, 4, M, 1)
    att = dict(x=r(2 * 4, M * M, C), qkv_weight=r(3 * C, C), qkv_bias=r(3 * C),
               proj_weight=r(C, C), proj_bias=r(C), bias=r(nH, M * M, M * M), mask=mask,
               num_heads=nH)
    with tuning.forced(**{product: candidate}):
        for bias in (b, None):
            got, cache = tiers.FAST.linear_forward(x, w, bias)
            want, plain_cache = tiers.PLAIN.linear_forward(x, w, bias)
            np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)
            d = r(*want.shape)
            for g, h in zip(tiers.FAST.linear_backward(d, cache),
                            tiers.PLAIN.linear_backward(d, plain_cache)):
                assert (g is None) == (h is None)
                if g is not None:
                    assert g.flags.c_contiguous
                    np.testing.assert_allclose(g, h, rtol=1e-13, atol=1e-13)
        got, cache = tiers.FAST.window_attention_forward(**att)
        want, plain_cache = tiers.PLAIN.window_attention_forward(**att)
        columns = tuning._forced.get("attention_kv") == "columns"
        assert cache.k.swapaxes(-1, -2).flags.c_contiguous == columns   # the layout used
        assert cache.v.swapaxes(-1, -2).flags.c_contiguous == columns
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)
        d = r(*want.shape)
        for cached in (cache, plain_cache):                # either tier's cache
            for g, h in zip(tiers.FAST.window_attention_backward(d, cached),
                            tiers.PLAIN.window_attention_backward(d, plain_cache)):
                np.testing.assert_allclose(g, h, rtol=1e-12, atol=1e-12)
        for g, h in zip(tiers.PLAIN.window_attention_backward(d, cache),
                        tiers.PLAIN.window_attention_backward(d, plain_cache)):
            np.testing.assert_allclose(g, h, rtol=1e-12, atol=1e-12)


def test_the_column_layout_is_a_transposed_view_with_the_values_in_place():
    a = tuning.stored("columns", (2, 3, 5, 4), np.float64)
    assert a.shape == (2, 3, 5, 4) and not a.flags.c_contiguous
    assert a.swapaxes(-1, -2).flags.c_contiguous
    assert tuning.stored("rows", (2, 3, 5, 4), np.float64).flags.c_contiguous


def test_forced_row_block_sets_the_block_size_and_an_unknown_candidate_is_refused():
    with tuning.forced(row_block=65536):
        assert parallel.block_elements() == 65536
        assert parallel.block_rows(1024) == 64
    with pytest.raises(ValueError, match="linear_dx: expected one of .*'w'.*got 'x'"):
        with tuning.forced(linear_dx="x"):
            pass
    with pytest.raises(ValueError, match="product: expected one of .*got 'nope'"):
        tuning.candidates("nope")


# ---------------------------------------------------------------------------- switched off

def test_off_means_defaults_nothing_timed_and_no_file(tmp_path, monkeypatch):
    monkeypatch.setenv(tuning.CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(tuning, "_choices", None)
    monkeypatch.setenv(tuning.ENV, "0")
    monkeypatch.setattr(tuning, "busy", lambda: False)     # a quiet machine, whatever it is
    fake_times(monkeypatch)                                # any timing fails the test
    for product in tuning.DEFAULTS:
        assert tuning.pick(product, (8192, 96, 384), np.float32,
                           lambda c: lambda: None) == tuning.DEFAULTS[product]
    model = minswin.create_model("swin_micro", num_classes=3)
    previous = minswin.use_fast(True)
    try:
        model.forward(np.ones((64, 32, 32, 3), np.float32))
    finally:
        minswin.use_fast(previous)
    assert list(tmp_path.iterdir()) == []


def test_the_switch_reads_the_environment_and_names_it_when_wrong(monkeypatch):
    monkeypatch.setenv(tuning.ENV, "1")
    assert tuning.enabled()
    monkeypatch.setenv(tuning.ENV, "off")
    assert not tuning.enabled()
    tuning.set_enabled(True)
    try:
        assert tuning.enabled()                            # the call wins over the shell
    finally:
        tuning.set_enabled(None)
    monkeypatch.setenv(tuning.ENV, "maybe")
    with pytest.raises(ValueError, match="MINSWIN_TUNE: expected 0 .* or 1 .*, got 'maybe'"):
        tuning.enabled()


# ---------------------------------------------------------------------------- choosing

def test_an_alternative_must_win_twice_by_more_than_the_margin(tuned, monkeypatch):
    fake_times(monkeypatch, {"w.T": 1.0, "copy w.T": 0.5}, {"w.T": 1.0, "copy w.T": 0.6})
    assert choose(shape=(1, 2, 3)) == "copy w.T"
    fake_times(monkeypatch, {"w.T": 1.0, "copy w.T": 0.5}, {"w.T": 1.0, "copy w.T": 1.2})
    assert choose(shape=(1, 2, 4)) == "w.T"                # won once: noise
    fake_times(monkeypatch, {"w.T": 1.0, "copy w.T": 0.97})
    assert choose(shape=(1, 2, 5)) == "w.T"                # within 5%: not timed again
    fake_times(monkeypatch, {"w.T": 0.5, "copy w.T": 1.0})
    assert choose(shape=(1, 2, 6)) == "w.T"
    fake_times(monkeypatch)                                # known classes: never timed again
    assert [choose(shape=(1, 2, n)) for n in (3, 4, 5, 6)] == ["copy w.T"] + ["w.T"] * 3


def test_small_products_and_cupy_arrays_are_not_timed(tuned, monkeypatch):
    fake_times(monkeypatch)
    x, w = np.ones((10, 8)), np.ones((6, 8))
    np.testing.assert_array_equal(tuning.product("linear_forward", x, w), x @ w.T)
    assert tuning.kv_layout(4, 3, 49, 32, np.float32, xp=object()) == "rows"
    assert list(tuned.iterdir()) == []


def test_a_busy_machine_takes_the_default_and_records_nothing(tuned, monkeypatch):
    monkeypatch.setattr(tuning, "busy", lambda: True)
    fake_times(monkeypatch)
    assert choose() == "w.T"
    assert tuning.choices() == {} and list(tuned.iterdir()) == []
    monkeypatch.setattr(tuning, "measure_when_busy", True)     # `minswin tune`
    fake_times(monkeypatch, {"w.T": 1.0, "copy w.T": 0.5}, {"w.T": 1.0, "copy w.T": 0.5})
    assert choose() == "copy w.T"


def test_busy_compares_the_load_with_the_cores(monkeypatch):
    monkeypatch.setattr(tuning, "usable_cores", lambda: 2)
    monkeypatch.setattr(os, "getloadavg", lambda: (4.5, 0, 0))
    assert tuning.busy()
    monkeypatch.setattr(os, "getloadavg", lambda: (3.5, 0, 0))
    assert not tuning.busy()


def test_tokens_are_classed_to_the_nearest_power_of_two():
    assert [tuning.tokens_class(n) for n in (1, 3, 25088, 28224, 1568)] == \
        [1, 4, 32768, 32768, 2048]


def test_the_timer_keeps_each_candidates_best_round(monkeypatch):
    calls = []
    seconds = [5, 3, 4, 9, 2, 1]                           # a: 5, 4, 2; b: 3, 9, 1
    ticks = [0.0]                                          # the start, then each call's two
    for s in seconds:
        ticks += [ticks[-1], ticks[-1] + s]
    ticks.append(ticks[-1])                                # the last look at the clock
    monkeypatch.setattr(tuning, "clock", iter(ticks).__next__)
    trial = lambda name: lambda: calls.append(name)        # noqa: E731
    seen = tuning.best_times({"a": trial("a"), "b": trial("b")}, rounds=3, min_seconds=0)
    assert calls == ["a", "b"] * 4                         # one warm-up each, alternating
    assert seen == {"a": 2, "b": 1}


# ---------------------------------------------------------------------------- the cache file

def test_choices_are_kept_in_the_machines_file_and_read_back(tuned, monkeypatch):
    fake_times(monkeypatch, {"w.T": 1.0, "copy w.T": 0.5}, {"w.T": 1.0, "copy w.T": 0.5})
    assert choose() == "copy w.T"
    path = tuning.cache_path()
    assert os.path.dirname(path) == str(tuned) and os.path.basename(path).startswith("tuning-")
    data = json.loads(open(path).read())
    assert data["machine"]["cpu"] and data["machine"]["numpy"] == np.__version__
    assert data["choices"]["linear_forward|float32|1024x96x384"]["choice"] == "copy w.T"
    assert [p.name for p in tuned.iterdir()] == [os.path.basename(path)]   # no temp files
    monkeypatch.setattr(tuning, "_choices", None)          # a new process, as it were
    fake_times(monkeypatch)
    assert choose() == "copy w.T"
    assert "copy w.T" in "\n".join(tuning.summary())
    assert tuning.forget() == path and not os.path.exists(path)
    fake_times(monkeypatch, {"w.T": 1.0, "copy w.T": 1.0})
    assert choose() == "w.T"                               # forgotten: timed again


KEY = "linear_forward|float32|1024x96x384"


@pytest.mark.parametrize("content", [
    "{not json",
    json.dumps({"machine": {"cpu": "other"}, "choices": {KEY: {"choice": "copy w.T"}}}),
    json.dumps({"machine": None, "choices": [1]})])
def test_a_broken_file_or_another_machines_is_ignored_and_replaced(tuned, monkeypatch,
                                                                   content):
    path = tuning.cache_path()
    with open(path, "w") as f:
        f.write(content)
    fake_times(monkeypatch, {"w.T": 1.0, "copy w.T": 1.0})
    assert choose() == "w.T"
    assert json.loads(open(path).read())["machine"] == tuning.fingerprint()


def test_an_invalid_choice_in_the_file_is_ignored(tuned, monkeypatch):
    key = "linear_forward|float32|1024x96x384"
    with open(tuning.cache_path(), "w") as f:
        json.dump({"machine": tuning.fingerprint(),
                   "choices": {key: {"choice": "x @ y", "seconds": {}}}}, f)
    fake_times(monkeypatch, {"w.T": 1.0, "copy w.T": 1.0})
    assert choose() == "w.T"


def test_a_folder_that_cannot_be_written_warns_once_and_keeps_the_choice(tuned, monkeypatch):
    blocker = tuned / "file"
    blocker.write_text("")
    monkeypatch.setenv(tuning.CACHE_ENV, str(blocker / "sub"))   # a folder under a file
    monkeypatch.setattr(tuning, "_fingerprint", None)
    fake_times(monkeypatch, *[{"w.T": 1.0, "copy w.T": 0.5}] * 4)
    with pytest.warns(RuntimeWarning, match="cannot write the tuning cache"):
        assert choose() == "copy w.T"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert choose(shape=(1, 1, 1)) == "copy w.T"       # no second warning
        assert choose() == "copy w.T"


def test_the_file_depends_on_the_machine(tuned, monkeypatch):
    here = tuning.cache_path()
    monkeypatch.setattr(tuning, "_fingerprint", {**tuning.fingerprint(), "kernel": "Other"})
    assert tuning.cache_path() != here


# ---------------------------------------------------------------------------- minswin tune

def cli(*args, env=None, cache=None):
    full = {**os.environ, "PYTHONPATH": ROOT, "MINSWIN_TUNE": "1", **(env or {})}
    if cache is not None:
        full[tuning.CACHE_ENV] = str(cache)
    return subprocess.run([sys.executable, "-m", "minswin", "tune", *args], cwd=ROOT,
                          env=full, capture_output=True, text=True, timeout=300)


def test_minswin_tune_times_a_model_shows_and_forgets(tmp_path):
    run = cli("--model", "swin_micro:8", cache=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "processor:" in run.stdout and "kernel" in run.stdout
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and str(files[0]) in run.stdout
    data = json.loads(files[0].read_text())
    assert "row_block|float32|4194304" in data["choices"]
    for key, rec in data["choices"].items():
        assert rec["choice"] in tuning.candidates(key.split("|")[0])
    shown = cli("--show", cache=tmp_path)
    assert shown.returncode == 0 and "row_block" in shown.stdout
    gone = cli("--forget", cache=tmp_path)
    assert gone.returncode == 0 and "deleted" in gone.stdout
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args,env,message", [
    (["--model", "swin_q:3"], {}, "--model: expected NAME[:BATCH] with NAME one of"),
    (["--model", "swin_t:0"], {}, "--model: expected NAME[:BATCH]"),
    (["--model", "swin_l:1000000"], {}, "--model: swin_l:1000000 needs about"),
    ([], {"MINSWIN_TUNE": "0"}, "MINSWIN_TUNE=0 turns tuning off"),
    ([], {"MINSWIN_TUNE": "sometimes"}, "MINSWIN_TUNE: expected 0 (off) or 1 (on)"),
])
def test_minswin_tune_refuses_bad_input_in_one_line(args, env, message, tmp_path):
    run = cli(*args, env=env, cache=tmp_path)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("minswin tune: error: ")
    assert message in lines[0]
    assert list(tmp_path.iterdir()) == []
