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
"""
import contextlib
import threading

_state = threading.local()


def is_grad_enabled():
    """False inside `no_grad()` (in this thread), True otherwise."""
    return getattr(_state, "enabled", True)


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
    """Context manager (and decorator): forwards inside keep no caches. Nests; thread-local."""

    def __enter__(self):
        self._prev = is_grad_enabled()
        _state.enabled = False
        return self

    def __exit__(self, *exc):
        _state.enabled = self._prev
        return False
