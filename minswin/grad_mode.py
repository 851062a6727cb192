"""`with minswin.no_grad():` forwards that keep nothing for a backward (inference).

A module's forward keeps the cache its backward reads (`self.cache`, minswin/module.py). When
no backward will come (evaluation, pictures, the tour) those caches are only memory: for Swin-T
every cache together is many times the largest single activation. Inside `no_grad()` each
module drops its cache as soon as it is set, so what lives at once is the current layer's
arrays only, as in PyTorch under `torch.no_grad()`.

`model.eval()` is a different switch, as in PyTorch: it turns off training-time behaviour
(DropPath) and keeps the caches, so a gradient check of a model in eval mode still works.

    with minswin.no_grad():
        logits = model.forward(x)          # same numbers, no caches kept
    model.backward(dlogits)                # RuntimeError: the forward ran under no_grad()

    with minswin.no_grad(keep_attention=True):   # for pictures of the attention
        model.forward(x)
    model.layers[0].blocks[1].attention_weights()          # (B, nW, nH, N, N)
"""
import contextlib
import threading

_state = threading.local()


def is_grad_enabled():
    """False inside `no_grad()` (in this thread), True otherwise."""
    return getattr(_state, "enabled", True)


def keeps_attention():
    """Whether attention modules keep their probabilities for `attention_weights()`: always
    outside no_grad() (they are in the cache anyway), inside only with keep_attention=True."""
    return is_grad_enabled() or getattr(_state, "keep_attention", False)


class NoCache:
    """What a module holds after a forward under `no_grad()`: no cache, and a reason."""

    __slots__ = ()

    def __repr__(self):
        return "NO_CACHE"


NO_CACHE = NoCache()

NO_CACHE_MESSAGE = ("backward: the last forward of this module ran inside minswin.no_grad(), "
                    "which keeps nothing for a backward; run the forward outside no_grad() "
                    "(model.eval() alone keeps the caches) before calling backward")


class no_grad(contextlib.ContextDecorator):
    """Context manager (and decorator): forwards inside keep no caches. Nests; thread-local.

    keep_attention=True: the attention modules still keep their probabilities (B*nW, nH, N, N)
    for `block.attention_weights()`, the pictures' input; a small share of the caches."""

    def __init__(self, keep_attention=False):
        if not isinstance(keep_attention, bool):
            raise TypeError(f"keep_attention: expected True or False, got {keep_attention!r}")
        self.keep_attention = keep_attention
        self._prev = []

    def __enter__(self):
        self._prev.append((is_grad_enabled(), getattr(_state, "keep_attention", False)))
        _state.enabled, _state.keep_attention = False, self.keep_attention
        return self

    def __exit__(self, *exc):
        _state.enabled, _state.keep_attention = self._prev.pop()
        return False
