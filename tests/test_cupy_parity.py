"""NumPy vs CuPy: the same ops and the same model give the same numbers on either backend.

Skipped, with the reason shown, where CuPy or a GPU is missing: never reported as passed.
(The gradient checks of every op also run on CuPy through the `xp` fixture.)
"""
import numpy as np
import pytest
from conftest import NEEDS_GPU

import minswin
from minswin.backend import to_backend, to_numpy

pytestmark = NEEDS_GPU


def allclose(a, b, rtol=1e-12, atol=1e-12):
    """Per-element |a - b| <= atol + rtol |b| (llm.c's parity rule), b the NumPy reference."""
    np.testing.assert_allclose(to_numpy(a), to_numpy(b), rtol=rtol, atol=atol)


@pytest.fixture
def on_cupy():
    minswin.use("cupy")
    yield
    minswin.use("numpy")


def test_ops_forward_backward_parity(rng, on_cupy):
    import cupy
    from test_ops_gradcheck import CASES  # the same cases the gradient checks use
    for name, make in sorted(CASES.items()):
        if name == "droppath_train":      # its masks are drawn on each backend's own device,
            continue                      # so they differ (tests/test_gpu_paths.py)
        forward, backward, inputs, static = make(np.random.default_rng(2))
        out_np, cache_np = forward(**inputs, **static)
        dout = rng.standard_normal(out_np.shape)
        grads_np = backward(dout, cache_np)
        gin = {k: to_backend(v, cupy) for k, v in inputs.items()}
        gst = {k: to_backend(v, cupy) if isinstance(v, np.ndarray) else v
               for k, v in static.items()}
        out_cp, cache_cp = forward(**gin, **gst)
        allclose(out_cp, out_np)
        grads_cp = backward(to_backend(dout, cupy), cache_cp)
        grads_np = grads_np if isinstance(grads_np, tuple) else (grads_np,)
        grads_cp = grads_cp if isinstance(grads_cp, tuple) else (grads_cp,)
        for a, b in zip(grads_cp, grads_np):
            if b is not None:
                allclose(a, b)


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-11), ("float32", 2e-4)])
def test_model_parity(rng, dtype, tol):
    minswin.use("numpy")
    ref = minswin.create_model("swin_micro", num_classes=7, dtype=dtype, seed=3).eval()
    x = rng.standard_normal((2, 36, 28, 3)).astype(dtype)
    d = rng.standard_normal((2, 7)).astype(dtype)
    y_np = ref.forward(x)
    dx_np = ref.backward(d)
    minswin.use("cupy")
    try:
        gpu = minswin.create_model("swin_micro", num_classes=7, dtype=dtype, seed=3).eval()
        gpu.load_state_dict(ref.state_dict())
        import cupy
        y_cp = gpu.forward(cupy.asarray(x))
        dx_cp = gpu.backward(cupy.asarray(d))
    finally:
        minswin.use("numpy")
    allclose(y_cp, y_np, rtol=tol, atol=tol)
    allclose(dx_cp, dx_np, rtol=tol, atol=tol)
    for k in ref.grads:
        allclose(gpu.grads[k], ref.grads[k], rtol=tol, atol=tol)


def test_mixing_backends_is_refused(rng, on_cupy):
    import cupy

    from minswin.ops.linear import linear_forward
    with pytest.raises(TypeError, match="two backends"):
        linear_forward(rng.standard_normal((2, 3)), cupy.ones((4, 3)))
