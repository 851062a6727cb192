"""A minimal module: named parameters, gradients with the same names, children, train/eval.

`params` and `grads` are flat dicts whose keys are the official state-dict names relative to
the module ("qkv.weight" in an attention module, "layers.0.blocks.1.attn.qkv.weight" in the
model). A parent's dicts hold the very same array objects as its children's, so writing
`model.params[k][...] = v` (v on the same backend: CuPy refuses a NumPy v there) or
`p -= lr * g` changes the layer that uses it.

Gradients accumulate (`+=`) like PyTorch's: call `zero_grad()` before each backward.
A module keeps the cache of its last forward in `self.cache`; its backward uses only that.
Inside `minswin.no_grad()` a cache is dropped as it is set (minswin/grad_mode.py): reading it
then is a RuntimeError that says why, so a backward after such a forward is a named error.
"""
import numpy as np

from .backend import default_xp, to_backend
from .grad_mode import NO_CACHE, is_grad_enabled


class LiveArrays(dict):
    """`params` and `grads`: name -> the very array a layer computes with. Replacing an entry
    would leave the layer on the old array while state_dict() returned the new one, so it is
    refused with a TypeError that says to write into the array instead."""

    def __init__(self, what):
        super().__init__()
        self.what = what

    def register(self, name, arr):
        dict.__setitem__(self, name, arr)

    def _refuse(self, *args, **kwargs):
        raise TypeError(f"{self.what}: the entries are the live arrays the layers compute with, "
                        f"so they cannot be replaced, added or removed; write into them "
                        f"instead: {self.what}[name][...] = value, with value on the "
                        f"array's backend (CuPy takes no NumPy array there: "
                        f"minswin.to_backend(value, 'cupy')), or load_state_dict")

    def __setitem__(self, name, value):
        if name in self and value is dict.__getitem__(self, name):
            return                      # `params[k] -= lr * g` changed the array in place
        self._refuse()

    __delitem__ = update = pop = popitem = setdefault = clear = _refuse
    __ior__ = _refuse

    def __reduce__(self):                              # copy/deepcopy without __setitem__
        return _live_arrays, (self.what, dict(self))


def _live_arrays(what, items):
    d = LiveArrays(what)
    for k, v in items.items():
        d.register(k, v)
    return d


class Module:
    def __init__(self):
        self.params = LiveArrays("params")
        self.grads = LiveArrays("grads")
        self.children = {}
        self.training = False
        self.cache = None

    # -------------------------------------------------------------- the cache
    @property
    def cache(self):
        """What the last forward kept for the backward (None before any forward)."""
        cache = self._cache
        if cache is NO_CACHE:
            raise RuntimeError(
                f"{type(self).__name__}: its last forward ran inside minswin.no_grad(), which "
                "keeps nothing for a backward; backward() and attention_weights() need a "
                "forward outside no_grad() (model.eval() alone keeps the caches)")
        return cache

    @cache.setter
    def cache(self, value):
        # the one place that decides whether a forward keeps what its backward needs
        self._cache = value if value is None or is_grad_enabled() else NO_CACHE

    # -------------------------------------------------------------- building
    def param(self, name, value):
        """Register a parameter (a host array; moved to the default backend)."""
        arr = to_backend(np.ascontiguousarray(value), default_xp())
        self.params.register(name, arr)
        self.grads.register(name, arr * 0)
        return arr

    def child(self, name, module):
        """Register a sub-module and adopt its parameters under `name.`."""
        self.children[name] = module
        for k in module.params:
            self.params.register(f"{name}.{k}", module.params[k])
            self.grads.register(f"{name}.{k}", module.grads[k])
        return module

    def accumulate(self, name, grad):
        """grads[name] += grad (in place, so every dict holding it sees the sum).

        The shapes must match exactly: a backward that returns a wrong-shaped gradient would
        otherwise be broadcast into the sum without a word."""
        g = self.grads[name]
        if grad.shape != g.shape:
            raise ValueError(f"{name}: expected a gradient of shape {tuple(g.shape)}, got "
                             f"{tuple(grad.shape)}")
        g += grad

    # -------------------------------------------------------------- state
    def zero_grad(self):
        for g in self.grads.values():
            g[...] = 0

    def train(self, mode=True):
        self.training = mode
        for c in self.children.values():
            c.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def num_params(self):
        return int(sum(p.size for p in self.params.values()))

