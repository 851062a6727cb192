"""benchmarks/bench_swin.py's bookkeeping, on stand-in workloads (no real timing): every case
and tier gets its row, ratios and table columns. Performance itself is never asserted."""
import argparse

import pytest

import minswin
from minswin.fast import tuning


@pytest.fixture
def bench(bench_swin, monkeypatch):
    mod = bench_swin
    monkeypatch.setattr(mod, "gemm_gflops", lambda backend: 10.0)
    seen = []

    def minswin_case(case, batch, backend):               # records the tier each call ran on
        run = lambda: seen.append((case, minswin.tiers.fast_enabled(),   # noqa: E731
                                   tuning.enabled()))
        return run, run, None
    monkeypatch.setattr(mod, "minswin_case", minswin_case)
    monkeypatch.setattr(mod, "torch_case", lambda case, batch, backend: (
        lambda: None, lambda: None, None, "stand-in"))
    mod.seen = seen
    return mod


def test_every_case_and_tier_gets_its_row_and_columns(bench):
    args = argparse.Namespace(threads=2, rounds=2, backend="numpy", quick=False, no_memory=True,
                              no_tune=True, case=[("swin_t", 1), ("digits", 64)],
                              tiers=["fast", "plain"])
    previous = minswin.use_fast(None)
    try:
        meta, rows = bench.run(args)
    finally:
        minswin.use_fast(previous)
    assert [(r["case"], r["batch"]) for r in rows] == [("swin_t", 1), ("digits", 64)]
    for r in rows:
        for tier in ("fast", "plain"):
            assert r[f"{tier}_fwd_s"] > 0 and r[f"{tier}_fwd_bwd_s"] > 0
        assert r["minswin_fwd_bwd_s"] == r["fast_fwd_bwd_s"]   # the default tier first
    assert "gemm_fraction_fwd_bwd" in rows[0]
    assert {fast for case, fast, _ in bench.seen} == {True, False}   # both tiers really ran
    table = bench.markdown(meta, rows)
    assert "| fast fwd s | ratio | plain fwd s | ratio |" in table
    assert "| digits | 64 |" in table
    # beside the ratios: the processor, NumPy's BLAS and its kernel, the tuning, the load
    assert table.startswith(f"Processor: {tuning.cpu_model()}; NumPy's BLAS: ")
    assert f"({tuning.blas_info()['kernel']} kernels" in table
    assert "fast tier's tuning: off (MINSWIN_TUNE=0)" in table and "load average" in table


def test_untuned_is_the_fast_tier_with_tuning_off(bench, monkeypatch):
    monkeypatch.setenv("MINSWIN_TUNE", "1")
    args = argparse.Namespace(threads=2, rounds=1, backend="numpy", quick=False, no_memory=True,
                              no_tune=True, case=[("block", 1)], tiers=["fast", "untuned"])
    monkeypatch.setattr(tuning, "choices", lambda: {})
    monkeypatch.setattr(tuning, "cache_path", lambda: "nowhere")
    meta, rows = bench.run(args)
    assert {(fast, tuned) for _, fast, tuned in bench.seen} == {(True, True), (True, False)}
    assert tuning.enabled()                                # the environment's again
    assert "| untuned fwd s | ratio |" in bench.markdown(meta, rows)


@pytest.mark.parametrize("text", ["swin_t", "swin_t:0", "resnet:8", "block:x"])
def test_a_bad_case_is_refused_by_name(bench, text):
    with pytest.raises(argparse.ArgumentTypeError, match="expected swin_t:B, block:B or digits"):
        bench.parse_case(text)
