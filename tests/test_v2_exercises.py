"""The Swin V2 exercises: independent right answers pass; each typical wrong answer fails
with its own hint; the catalog's mistakes are really mistakes (they differ from the answer)."""
import numpy as np
import pytest

from minswin.exercises import EXERCISES, grade
from minswin.ops.linear import linear_backward

V2 = ("cosine_attention_backward", "continuous_bias_backward")


def cos_right_jacobian(dout, cache):
    """Written another way: explicit (I - u u^T) / |q| Jacobians, einsum, bias by slicing."""
    v, a = cache.v, cache.attn.out
    B_, nH, N, d = v.shape
    dm, dpw, dpb = linear_backward(dout, cache.proj)
    do = np.einsum("bnhd->bhnd", dm.reshape(B_, N, nH, d))
    da = np.einsum("bhid,bhjd->bhij", do, v)
    dv = np.einsum("bhij,bhid->bhjd", a, do)
    ds = np.einsum("bhij,bhij->bhij", a, da) - a * np.einsum("bhij,bhij->bhi", a, da)[..., None]
    tau = cache.scale.tau
    dls = np.where(cache.scale.below, np.einsum("bhij,bhij->h", ds, cache.cos)[:, None, None]
                   * tau, 0.0)
    dcos = ds * tau

    def unit(g, c):
        u = c.out
        J = (np.eye(d) - np.einsum("...i,...j->...ij", u, u)) / c.norm[..., None]
        return np.einsum("...ij,...j->...i", J, g)
    dq = unit(np.einsum("bhij,bhjd->bhid", dcos, cache.kn.out), cache.qn)
    dk = unit(np.einsum("bhij,bhid->bhjd", dcos, cache.qn.out), cache.kn)
    dqkv = np.concatenate([t.transpose(0, 2, 1, 3).reshape(B_, N, nH * d)
                           for t in (dq, dk, dv)], axis=-1)
    dx, dqw, db = linear_backward(dqkv, cache.qkv)
    C = nH * d
    return dx, dqw, db[:C], db[2 * C:], dls, dpw, dpb, ds.sum(0)


def cpb_right_bincount(dbias, cache):
    """Written another way: the scatter-add with np.bincount, one head at a time."""
    s = cache.sig
    dg = dbias * 16 * s * (1 - s)
    nH = dg.shape[0]
    idx = cache.gather.index.reshape(-1)
    dtable = np.stack([np.bincount(idx, dg[h].reshape(-1), minlength=cache.gather.rows)
                       for h in range(nH)], axis=1)
    dr, dw2, _ = linear_backward(dtable, cache.fc2)
    dt, dw1, db1 = linear_backward(dr * cache.active, cache.fc1)
    return dt.reshape(cache.coords_shape), dw1, db1, dw2


def cos_dbias_mean(dout, cache):
    g = list(EXERCISES["cosine_attention_backward"].reference(dout, cache))
    g[-1] = g[-1] / cache.v.shape[0]
    return tuple(g)


def cpb_forgets_everything_but_the_mlp(dbias, cache):
    dt_pass = EXERCISES["continuous_bias_backward"].reference(dbias, cache)
    return (dt_pass[0], dt_pass[1] * 0.5, dt_pass[2], dt_pass[3])


@pytest.mark.parametrize("name, fn", [("cosine_attention_backward", cos_right_jacobian),
                                      ("continuous_bias_backward", cpb_right_bincount)])
def test_independent_right_answers_pass(name, fn):
    r = grade(name, fn, out=False)
    assert r.passed, r.text


MISTAKES = [(name, m) for name in V2 for m in EXERCISES[name].mistakes]


@pytest.mark.parametrize("name, mistake", MISTAKES, ids=[f"{n}-{m.what}" for n, m in MISTAKES])
def test_each_typical_mistake_fails_with_its_hint(name, mistake):
    r = grade(name, mistake.backward, out=False)
    assert r.status == "failed" and r.exit_code == 1, r.text
    assert mistake.hint.ask in r.hint, r.hint
    assert r.text.count("hint:") == 1


@pytest.mark.parametrize("name, fn, fragment", [
    ("cosine_attention_backward", cos_dbias_mean, "dbias"),
    ("continuous_bias_backward", cpb_forgets_everything_but_the_mlp, "dfc1_weight")])
def test_unknown_wrong_answers_get_the_generic_hint(name, fn, fragment):
    r = grade(name, fn, out=False)
    assert r.status == "failed", r.text
    assert fragment in r.hint, r.hint


def test_the_clamp_case_is_there():
    """The clamp mistake can only show where a head sits above log 100."""
    cases = EXERCISES["cosine_attention_backward"].cases()
    assert any((c.inputs["logit_scale"] > np.log(100)).any() for c in cases)
