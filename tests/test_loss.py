"""Softmax cross-entropy: values by hand and against torch, float64 gradient checks."""
import math

import numpy as np
import pytest

from minswin.gradcheck import TOL_OP, check_op
from minswin.loss import accuracy_count, cross_entropy_backward, cross_entropy_forward, log_softmax


def _data(B=5, K=4, seed=0, scale=3.0):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((B, K)) * scale
    labels = rng.integers(0, K, size=B)
    return logits, labels


def test_value_by_hand():
    # two classes, one sample: loss = -log(e^2 / (e^2 + e^0)) = log(1 + e^-2)
    logits = np.array([[2.0, 0.0]])
    loss, _ = cross_entropy_forward(logits, np.array([0]))
    assert abs(float(loss) - math.log1p(math.exp(-2.0))) < 1e-15
    # smoothing 0.2 over K=2: q = (0.9, 0.1)
    loss, _ = cross_entropy_forward(logits, np.array([0]), label_smoothing=0.2)
    logp = np.array([2.0, 0.0]) - math.log(math.exp(2.0) + 1.0)
    assert abs(float(loss) - -(0.9 * logp[0] + 0.1 * logp[1])) < 1e-15


def test_uniform_logits_give_log_k():
    loss, _ = cross_entropy_forward(np.zeros((3, 10)), np.array([1, 2, 3]))
    assert abs(float(loss) - math.log(10)) < 1e-14


def test_no_overflow_with_huge_logits():
    logits = np.array([[1000.0, -1000.0, 0.0]], dtype=np.float32)
    loss, cache = cross_entropy_forward(logits, np.array([1]))
    assert np.isfinite(loss) and abs(float(loss) - 2000.0) < 1e-3
    assert np.isfinite(log_softmax(logits)).all()
    assert loss.dtype == np.float32
    assert cross_entropy_backward(1.0, cache).dtype == np.float32


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_against_torch(smoothing):
    torch = pytest.importorskip("torch")
    logits, labels = _data(B=7, K=6, seed=1)
    loss, cache = cross_entropy_forward(logits, labels, label_smoothing=smoothing)
    dz = cross_entropy_backward(1.0, cache)
    t = torch.tensor(logits, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(t, torch.tensor(labels),
                                            label_smoothing=smoothing)
    ref.backward()
    assert abs(float(loss) - ref.item()) <= 1e-14 * max(1.0, abs(ref.item()))
    np.testing.assert_allclose(dz, t.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_gradcheck(smoothing):
    logits, labels = _data(B=6, K=5, seed=2)
    report = check_op(cross_entropy_forward, cross_entropy_backward, {"logits": logits},
                      static={"labels": labels, "label_smoothing": smoothing}, tol=TOL_OP)
    print(report)
    assert report.passed, str(report)
    assert report.max_rel_error <= 1e-7


def test_gradcheck_catches_a_wrong_backward():
    # a backward that forgets the 1/B of the mean must fail the check
    logits, labels = _data(B=4, K=3, seed=3)

    def wrong_backward(dout, cache):
        return (cache.p - cache.q) * dout

    report = check_op(cross_entropy_forward, wrong_backward, {"logits": logits},
                      static={"labels": labels})
    assert not report.passed


def test_gradient_rows_sum_to_zero():
    logits, labels = _data(B=8, K=7, seed=4)
    _, cache = cross_entropy_forward(logits, labels, label_smoothing=0.1)
    dz = cross_entropy_backward(2.5, cache)
    np.testing.assert_allclose(dz.sum(axis=1), 0.0, atol=1e-15)


def test_accuracy_count():
    logits = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert int(accuracy_count(logits, np.array([1, 0, 0]))) == 2


@pytest.mark.parametrize("labels, err, words", [
    (np.array([0, 1, 2]), ValueError, "shape (2,)"),
    (np.array([0, 5]), ValueError, "class indices in [0, 3)"),
    (np.array([0.0, 1.0]), TypeError, "integer"),
])
def test_bad_labels(labels, err, words):
    with pytest.raises(err, match=r"labels") as e:
        cross_entropy_forward(np.zeros((2, 3)), labels)
    assert words in str(e.value)


def test_bad_smoothing_and_logits():
    with pytest.raises(ValueError, match="label_smoothing"):
        cross_entropy_forward(np.zeros((2, 3)), np.array([0, 1]), label_smoothing=1.0)
    with pytest.raises(ValueError, match="logits"):
        cross_entropy_forward(np.zeros(3), np.array([0]))
