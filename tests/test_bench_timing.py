"""benchmarks/bench_swin.py on a GPU: the clock waits for the device at both ends."""
import pytest
from conftest import NEEDS_GPU, STANDIN


def test_timed_synchronises_before_starting_and_before_stopping(bench_swin):
    events = []
    bench_swin.timed(lambda: events.append("work"), lambda: events.append("sync"))
    assert events == ["sync", "work", "sync"]
    events.clear()
    bench_swin.timed(lambda: events.append("work"), None)  # the CPU: nothing to wait for
    assert events == ["work"]


@NEEDS_GPU[0]                                               # the gpu mark
@NEEDS_GPU[1]                                               # skipped where CuPy cannot run
@pytest.mark.skipif(not STANDIN, reason="counting synchronisations needs the CuPy stand-in "
                                        "(MINSWIN_CUPY_STANDIN=1)")
def test_the_gemm_rate_on_cupy_is_synchronised(bench_swin):
    import cupy_standin

    import minswin
    with cupy_standin.count_transfers() as n:
        rate = bench_swin.gemm_gflops("cupy", n=32, reps=3)
    minswin.use("numpy")
    assert rate > 0 and n["sync"] == 2 * 3, n

