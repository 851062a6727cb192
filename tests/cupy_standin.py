"""A strict CPU stand-in for CuPy: runs minswin's CuPy code paths on a machine without a GPU.

    MINSWIN_CUPY_STANDIN=1 pytest -m gpu      # every CuPy-marked test, on this stand-in

The tests' conftest installs it as ``cupy`` and ``cupyx`` (in ``sys.modules``, and through
``tests/standin_path/`` for subprocesses) when ``MINSWIN_CUPY_STANDIN=1``. It is never shipped
in ``minswin/`` and minswin never knows it is there.

What it checks, more strictly than NumPy would:
* its own array type, ``cupy.ndarray``, that refuses implicit conversion to NumPy:
  ``np.asarray(x)`` raises TypeError as CuPy's ``__array__`` does, and so does mixing a NumPy
  array into a CuPy operation (``x + numpy_array``, ``cupy.matmul(x, numpy_array)``);
* NumPy functions called on it (``np.exp(x)``) raise: real CuPy would dispatch them, but
  minswin's ops must write ``xp.exp``. This is the one place it is stricter than CuPy;
* only functions, methods and keywords that real CuPy has (``_FUNCTIONS``, ``_UFUNCS``,
  ``_METHODS``; tests/test_cupy_standin.py checks every name and keyword against an installed
  ``cupy``), ``cupyx.scipy.special.erf``, ``cupyx.scatter_add`` and
  ``cupyx.allow_synchronize``;
* assignment of a host array into a device array (``d[...] = h``) is refused, with CuPy's
  own ValueError ("non-scalar numpy.ndarray cannot be used for fill"): write
  ``d[...] = cupy.asarray(h)`` or ``d.set(h)``;
* ``ufunc.at`` only for the ufuncs CuPy scatters (``add``, ``subtract``, ``maximum``,
  ``minimum``), ``ufunc.reduce`` only for ``add`` and ``multiply`` (NotImplementedError
  otherwise, as CuPy's); ``flags`` has only CuPy's ``c_contiguous``, ``f_contiguous`` and
  ``owndata`` (no ``writeable``);
* reductions return 0-d arrays, as CuPy's do, so ``float(x.sum())`` is a visible transfer;
* it counts transfers: ``transfers["h2d"]`` (``cupy.asarray`` of host data, ``.set``, a host
  index array or list in ``d[index]`` or ``ufunc.at``, which CuPy copies to the device) and
  ``transfers["d2h"]`` (``.get()``, ``asnumpy``, ``float()``, ``int()``, ``bool()``,
  ``.item()``, ``.tolist()``, printing), and ``transfers["sync"]``
  (``Device().synchronize()``); ``count_transfers()`` measures a block of code;
* it has two devices, so caches keyed by device can be tested (``with cupy.cuda.Device(1):``);
* ``cupy.cuda.set_allocator`` and the pool's ``malloc`` (benchmarks/bench_swin.py's peak-memory
  tracker) and the cuRAND names DropPath uses (``cupy.cuda.curand``, ``cupy.random.RandomState``).

What it cannot catch (only a real GPU can): the numerics of real kernels (cuBLAS, cuRAND,
CuPy's own elementwise code: here NumPy computes everything), kernel compilation (NVRTC
errors, missing CUDA libraries), asynchrony (here every call finishes before it returns, so a
missing synchronise goes unnoticed; the sync counter is the only evidence), memory (no device
memory, no pool, no out-of-memory; the memory pool reports 0 bytes), and speed.
"""
import collections
import contextlib
import sys
import types

import numpy as np

__version__ = "14.2.0"         # the CuPy API whose names were checked (see the module docstring)
NUM_DEVICES = 2

transfers = {"h2d": 0, "d2h": 0, "sync": 0}
# calls by name ("erf", "matmul", "ndarray.sum", ...; operators by their name: "matmul" for @,
# "add" for +), and "copy for overlap": the copies CuPy makes of an input that may share
# memory with a different `out=` array (cupy/_core/_kernel.pyx, _copy_in_args_if_needed)
calls = collections.Counter()
_state = {"device": 0, "allow_sync": True}


class DeviceSynchronized(RuntimeError):
    """As cupyx.DeviceSynchronized: a transfer inside ``cupyx.allow_synchronize(False)``."""


def _count(kind, what):
    if kind == "d2h" and not _state["allow_sync"]:
        raise DeviceSynchronized(f"device synchronization was detected ({what}) while "
                                 "cupyx.allow_synchronize(False) is in effect")
    transfers[kind] += 1


@contextlib.contextmanager
def count_transfers():
    """Counts of the transfers made inside the block: ``with count_transfers() as n: ...``."""
    start = dict(transfers)
    delta = dict.fromkeys(transfers, 0)
    try:
        yield delta
    finally:
        for k in transfers:
            delta[k] = transfers[k] - start[k]


@contextlib.contextmanager
def count_calls():
    """The calls made inside the block, by name: ``with count_calls() as c: ...``."""
    start = collections.Counter(calls)
    delta = collections.Counter()
    try:
        yield delta
    finally:
        delta.update(calls)
        delta.subtract(start)
        for k in [k for k, v in delta.items() if not v]:
            del delta[k]


def _overlap_copies(inputs, out):
    """Count the copies CuPy makes before an elementwise kernel with out=: each input that is
    not the out array itself but may share memory with it is copied first."""
    if not isinstance(out, ndarray):
        return
    for a in inputs:
        if isinstance(a, ndarray) and a is not out and np.may_share_memory(a._a, out._a):
            calls["copy for overlap"] += 1


def freeze(a):
    """Make a stand-in array read-only (test helper; CuPy itself has no read-only flag), so a
    test can prove that no code writes into it: the write raises at the line that makes it."""
    a._a.setflags(write=False)
    return a


# ---------------------------------------------------------------------------- the array

_SCALARS = (bool, int, float, complex, np.generic)


def _unwrap(x, where):
    """The NumPy array under a stand-in array; scalars pass; host arrays are refused."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, np.ndarray):
        raise TypeError(f"Unsupported type {type(x)} in {where} (CuPy does not mix host "
                        "NumPy arrays into device operations; move it with cupy.asarray)")
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap(v, where) for v in x)
    return x


def _wrap(r):
    """NumPy results back into stand-in arrays; NumPy scalars become 0-d arrays, as in CuPy."""
    if isinstance(r, np.ndarray):
        return ndarray._of(r)
    if isinstance(r, np.generic):
        return ndarray._of(np.asarray(r))
    if isinstance(r, tuple):
        return tuple(_wrap(v) for v in r)
    if isinstance(r, list):
        return [_wrap(v) for v in r]
    return r


def _check_keywords(where, kwargs, allowed):
    bad = sorted(set(kwargs) - set(allowed))
    if bad:
        raise TypeError(f"{where}() got an unexpected keyword argument {bad[0]!r} (the CuPy "
                        f"stand-in accepts only CuPy's own keywords: {sorted(allowed)})")


class _Device:
    """cupy.cuda.Device: ``with Device(1):`` makes device 1 current."""

    def __init__(self, device=None):
        self.id = _state["device"] if device is None else int(device)
        if not 0 <= self.id < NUM_DEVICES:
            raise RuntimeError(f"cudaErrorInvalidDevice: invalid device ordinal {self.id}")
        self._prev = []

    compute_capability = "90"

    def synchronize(self):
        transfers["sync"] += 1

    def use(self):
        _state["device"] = self.id

    def __enter__(self):
        self._prev.append(_state["device"])
        _state["device"] = self.id
        return self

    def __exit__(self, *exc):
        _state["device"] = self._prev.pop()

    def __eq__(self, other):
        return isinstance(other, _Device) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    def __repr__(self):
        return f"<CUDA Device {self.id}>"


def _binary(op):
    name = op.__name__.strip("_")

    def method(self, other):
        calls[name] += 1
        return _wrap(op(self._a, _unwrap(other, f"ndarray.{op.__name__}")))
    return method


def _reflected(op):
    name = op.__name__.strip("_")

    def method(self, other):
        calls[name] += 1
        return _wrap(op(_unwrap(other, f"ndarray.{op.__name__}"), self._a))
    return method


def _inplace(op):
    def method(self, other):
        calls[op.__name__] += 1
        _overlap_copies([other], self)
        op(self._a, _unwrap(other, f"ndarray.{op.__name__}"), out=self._a)
        return self
    return method


class _Flags:
    """cupy.ndarray.flags: c_contiguous, f_contiguous and owndata only (read-only), also by
    name (``flags["C_CONTIGUOUS"]``); NumPy's writeable, aligned, ... do not exist in CuPy."""
    __slots__ = ("c_contiguous", "f_contiguous", "owndata")

    def __init__(self, np_flags):
        self.c_contiguous = np_flags.c_contiguous
        self.f_contiguous = np_flags.f_contiguous
        self.owndata = np_flags.owndata

    def __getitem__(self, name):
        keys = {"C_CONTIGUOUS": "c_contiguous", "F_CONTIGUOUS": "f_contiguous",
                "OWNDATA": "owndata"}
        if name not in keys:
            raise KeyError(f"{name} is not defined for cupy.ndarray.flags")
        return getattr(self, keys[name])

    def __repr__(self):
        return "\n".join(f"  {k.upper()} : {getattr(self, k)}" for k in self.__slots__)


def _index(key, where):
    """An index for a stand-in array: device index arrays unwrapped; a host index array (or a
    list, which CuPy also turns into an index array) is copied to the device, counted."""
    if isinstance(key, tuple):
        return tuple(_index(k, where) for k in key)
    if isinstance(key, ndarray):
        return key._a
    if isinstance(key, (np.ndarray, list)):
        _count("h2d", f"{where} with a host index array")
        return np.asarray(_unwrap(key, where) if isinstance(key, list) else key)
    return key


class ndarray:
    """cupy.ndarray on the host: a NumPy array inside that leaves only through a transfer."""
    __slots__ = ("_a", "_device")
    __hash__ = None

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        self._a = np.empty(shape, dtype=dtype, order=order)
        self._device = _state["device"]

    @classmethod
    def _of(cls, a):
        out = cls.__new__(cls)
        out._a = a
        out._device = _state["device"]
        return out

    # attributes CuPy has
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: _Flags(self._a.flags))
    T = property(lambda self: ndarray._of(self._a.T))
    device = property(lambda self: _Device(self._device))

    # no implicit way to the host (CuPy's own message)
    def __array__(self, dtype=None, copy=None):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use "
                        "`.get()` to construct a NumPy array explicitly.")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        raise TypeError(f"numpy.{ufunc.__name__} was called on a CuPy array: minswin's code "
                        f"must write xp.{ufunc.__name__} (the CuPy stand-in refuses what real "
                        "CuPy would dispatch)")

    def __array_function__(self, func, types_, args, kwargs):
        raise TypeError(f"numpy.{func.__name__} was called on a CuPy array: minswin's code "
                        f"must write xp.{func.__name__} (the CuPy stand-in refuses what real "
                        "CuPy would dispatch)")

    # explicit transfers, counted
    def get(self, stream=None, order="C", out=None, blocking=True):
        _count("d2h", "ndarray.get")
        if out is not None:
            out[...] = self._a
            return out
        return np.array(self._a, order=order)

    def set(self, arr, stream=None):
        _count("h2d", "ndarray.set")
        self._a[...] = arr

    def item(self):
        _count("d2h", "ndarray.item")
        return self._a.item()

    def tolist(self):
        _count("d2h", "ndarray.tolist")
        return self._a.tolist()

    def __float__(self):
        _count("d2h", "float(ndarray)")
        return float(self._a)

    def __int__(self):
        _count("d2h", "int(ndarray)")
        return int(self._a)

    def __complex__(self):
        _count("d2h", "complex(ndarray)")
        return complex(self._a)

    def __bool__(self):
        _count("d2h", "bool(ndarray)")
        return bool(self._a)

    def __repr__(self):
        _count("d2h", "repr(ndarray)")
        return repr(self._a)

    def __str__(self):
        _count("d2h", "str(ndarray)")
        return str(self._a)

    def __format__(self, spec):
        _count("d2h", "format(ndarray)")
        return format(self._a if self._a.ndim else self._a.item(), spec)

    # indexing: device index arrays and Python indices; a host index array is a transfer
    def __getitem__(self, key):
        return _wrap(self._a[_index(key, "ndarray.__getitem__")])

    def __setitem__(self, key, value):
        # CuPy writes a non-device value with fill(), which takes scalars only
        if isinstance(value, np.ndarray) and value.ndim:
            raise ValueError("non-scalar numpy.ndarray cannot be used for fill (CuPy does not "
                             "copy host arrays into device arrays by assignment: write "
                             "d[...] = cupy.asarray(h), or d.set(h))")
        if isinstance(value, (list, tuple)):
            raise TypeError(f"Unsupported type {type(value)} in ndarray.__setitem__ (CuPy "
                            "fills with scalars or device arrays only)")
        value = _unwrap(value, "ndarray.__setitem__")
        self._a[_index(key, "ndarray.__setitem__")] = value

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (_wrap(v) for v in self._a)

    def __copy__(self):
        return ndarray._of(self._a.copy())

    def __deepcopy__(self, memo):
        return ndarray._of(self._a.copy())

    def __neg__(self):
        return ndarray._of(-self._a)

    def __pos__(self):
        return ndarray._of(+self._a)

    def __abs__(self):
        return ndarray._of(abs(self._a))

    def __invert__(self):
        return ndarray._of(~self._a)


def _import_operator_methods():
    import operator as o
    for name, op in [("add", o.add), ("sub", o.sub), ("mul", o.mul), ("truediv", o.truediv),
                     ("floordiv", o.floordiv), ("mod", o.mod), ("pow", o.pow),
                     ("matmul", o.matmul), ("and", o.and_), ("or", o.or_), ("xor", o.xor)]:
        setattr(ndarray, f"__{name}__", _binary(op))
        setattr(ndarray, f"__r{name}__", _reflected(op))
    for name, op in [("eq", o.eq), ("ne", o.ne), ("lt", o.lt), ("le", o.le), ("gt", o.gt),
                     ("ge", o.ge)]:
        setattr(ndarray, f"__{name}__", _binary(op))
    for name, uf in [("add", np.add), ("sub", np.subtract), ("mul", np.multiply),
                     ("truediv", np.true_divide), ("floordiv", np.floor_divide),
                     ("mod", np.remainder), ("pow", np.power), ("and", np.bitwise_and),
                     ("or", np.bitwise_or), ("xor", np.bitwise_xor)]:
        setattr(ndarray, f"__i{name}__", _inplace(uf))


_import_operator_methods()

# methods of cupy.ndarray and the keywords each accepts (checked against CuPy's docstrings)
_METHODS = {
    "reshape": ("order", "copy"), "transpose": (), "swapaxes": ("axis1", "axis2"),
    "ravel": ("order",), "flatten": ("order",), "squeeze": ("axis",), "view": ("dtype", "type"),
    "sum": ("axis", "dtype", "out", "keepdims"), "mean": ("axis", "dtype", "out", "keepdims"),
    "prod": ("axis", "dtype", "out", "keepdims"), "max": ("axis", "out", "keepdims"),
    "min": ("axis", "out", "keepdims"), "argmax": ("axis", "out", "keepdims"),
    "argmin": ("axis", "out", "keepdims"), "any": ("axis", "out", "keepdims"),
    "all": ("axis", "out", "keepdims"), "var": ("axis", "dtype", "out", "ddof", "keepdims"),
    "std": ("axis", "dtype", "out", "ddof", "keepdims"), "cumsum": ("axis", "dtype", "out"),
    "astype": ("dtype", "order", "casting", "subok", "copy"), "copy": ("order",),
    "fill": ("value",), "take": ("indices", "axis", "out"), "repeat": ("repeats", "axis"),
    "clip": ("min", "max", "out"), "dot": ("b", "out"), "round": ("decimals", "out"),
    "nonzero": (), "conj": (), "argsort": ("axis", "kind"), "sort": ("axis", "kind"),
    "diagonal": ("offset", "axis1", "axis2"),
}


def _method(name, allowed):
    def method(self, *args, **kwargs):
        _check_keywords(f"ndarray.{name}", kwargs, allowed)
        where = f"ndarray.{name}"
        calls[where] += 1
        out = kwargs.get("out")
        r = getattr(self._a, name)(*_unwrap(args, where),
                                   **{k: _unwrap(v, where) for k, v in kwargs.items()})
        return out if out is not None else (self if name == "fill" else _wrap(r))
    method.__name__ = name
    return method


for _name, _kw in _METHODS.items():
    setattr(ndarray, _name, _method(_name, _kw))
ndarray.__module__ = "cupy"          # minswin's backend recognises CuPy arrays by module
ndarray.__qualname__ = "ndarray"


# ---------------------------------------------------------------------------- functions

# the ufuncs whose .at CuPy implements (a scatter kernel: cupy.ufunc's _scatter_op) and whose
# .reduce it implements (as sum / prod); every other one raises NotImplementedError there
_UFUNC_AT = ("add", "subtract", "maximum", "minimum")
_UFUNC_REDUCE = ("add", "multiply")


class ufunc:
    """cupy.ufunc: out=, dtype=, casting=; .outer; .at and .reduce where CuPy has them."""
    _kw = ("out", "dtype", "casting")

    def __init__(self, name, np_ufunc=None):
        self.__name__ = self.name = name
        self._np = np_ufunc if np_ufunc is not None else getattr(np, name)

    def __call__(self, *args, **kwargs):
        _check_keywords(f"cupy.{self.name}", kwargs, self._kw)
        where = f"cupy.{self.name}"
        calls[self.name] += 1
        out = kwargs.get("out")
        _overlap_copies(args, out)
        r = self._np(*_unwrap(args, where), **{k: _unwrap(v, where) for k, v in kwargs.items()})
        return out if out is not None else _wrap(r)

    def at(self, a, indices, b=None):
        where = f"cupy.{self.name}.at"
        if self.name not in _UFUNC_AT:                     # CuPy's own message
            raise NotImplementedError(f"`cupy_{self.name}.at` is not supported yet")
        calls[where] += 1
        args = () if b is None else (_unwrap(b, where),)
        self._np.at(_unwrap(a, where), _index(indices, where), *args)

    def reduce(self, array, axis=0, dtype=None, out=None, keepdims=False):
        if self.name not in _UFUNC_REDUCE:
            raise NotImplementedError(f"`cupy_{self.name}.reduce` is not supported yet")
        method = "sum" if self.name == "add" else "prod"   # as CuPy: array.sum(...)
        return getattr(array, method)(axis=axis, dtype=dtype, out=out, keepdims=keepdims)

    def outer(self, A, B, **kwargs):
        _check_keywords(f"cupy.{self.name}.outer", kwargs, self._kw)
        where = f"cupy.{self.name}.outer"
        return _wrap(self._np.outer(_unwrap(A, where), _unwrap(B, where)))


_UFUNCS = ("add", "subtract", "multiply", "divide", "true_divide", "floor_divide", "negative",
           "power", "remainder", "exp", "log", "log1p", "expm1", "sqrt", "square",
           "reciprocal", "abs", "absolute", "maximum", "minimum", "fmax", "fmin", "tanh",
           "sign", "copysign", "floor", "ceil", "rint", "isfinite", "isnan", "isinf", "equal",
           "not_equal", "less", "less_equal", "greater", "greater_equal", "logical_and",
           "logical_or", "logical_not", "sin", "cos", "arctan2", "hypot", "cbrt", "matmul")

# functions of the cupy namespace and the keywords each accepts (checked against CuPy)
_FUNCTIONS = {
    "empty_like": ("dtype", "order", "subok", "shape"),
    "zeros_like": ("dtype", "order", "subok", "shape"),
    "ones_like": ("dtype", "order", "subok", "shape"),
    "full_like": ("fill_value", "dtype", "order", "subok", "shape"),
    "reshape": ("newshape", "order", "copy"), "transpose": ("axes",),
    "swapaxes": ("axis1", "axis2"), "moveaxis": ("source", "destination"),
    "expand_dims": ("axis",), "squeeze": ("axis",), "broadcast_to": ("shape",),
    "ravel": ("order",), "concatenate": ("axis", "out", "dtype", "casting"),
    "stack": ("axis", "out", "dtype", "casting"), "split": ("indices_or_sections", "axis"),
    "tile": ("reps",), "repeat": ("repeats", "axis"), "flip": ("axis",),
    "roll": ("shift", "axis"), "pad": ("pad_width", "mode", "constant_values"),
    "ascontiguousarray": ("dtype",), "where": ("x", "y"), "take": ("indices", "axis", "out"),
    "einsum": ("optimize", "dtype"), "dot": ("b", "out"), "tensordot": ("b", "axes"),
    "outer": ("b", "out"),
    "sum": ("axis", "dtype", "out", "keepdims"), "mean": ("axis", "dtype", "out", "keepdims"),
    "prod": ("axis", "dtype", "out", "keepdims"), "max": ("axis", "out", "keepdims"),
    "min": ("axis", "out", "keepdims"), "amax": ("axis", "out", "keepdims"),
    "amin": ("axis", "out", "keepdims"), "argmax": ("axis", "out", "keepdims"),
    "argmin": ("axis", "out", "keepdims"), "any": ("axis", "out", "keepdims"),
    "all": ("axis", "out", "keepdims"), "var": ("axis", "dtype", "out", "ddof", "keepdims"),
    "std": ("axis", "dtype", "out", "ddof", "keepdims"), "cumsum": ("axis", "dtype", "out"),
    "clip": ("a_min", "a_max", "out"), "around": ("decimals", "out"),
    "round": ("decimals", "out"), "allclose": ("b", "rtol", "atol", "equal_nan"),
    "array_equal": ("a2", "equal_nan"), "count_nonzero": ("axis",), "nonzero": (),
    "sort": ("axis",), "argsort": ("axis",), "triu": ("k",), "tril": ("k",), "diag": ("k",),
}
# creation and dtype helpers: no array arguments, no transfer
_CREATION = {
    "zeros": ("shape", "dtype", "order"), "ones": ("shape", "dtype", "order"),
    "empty": ("shape", "dtype", "order"), "full": ("shape", "fill_value", "dtype", "order"),
    "arange": ("start", "stop", "step", "dtype"),
    "linspace": ("start", "stop", "num", "endpoint", "retstep", "dtype", "axis"),
    "eye": ("N", "M", "k", "dtype", "order"), "identity": ("n", "dtype"),
}
_PASS_THROUGH = ("dtype", "result_type", "promote_types", "can_cast", "finfo", "iinfo",
                 "float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8",
                 "bool_", "complex64", "complex128", "pi", "e", "inf", "nan")


def _function(name, allowed, impl=None, arrays=True):
    np_fn = impl or getattr(np, name)

    def fn(*args, **kwargs):
        where = f"cupy.{name}"
        _check_keywords(where, kwargs, allowed)
        calls[name] += 1
        if arrays:
            args = _unwrap(args, where)
            kwargs = {k: _unwrap(v, where) for k, v in kwargs.items()}
        out = kwargs.get("out")
        r = np_fn(*args, **kwargs)
        return out if out is not None and arrays else _wrap(r)
    fn.__name__ = name
    return fn


def asarray(a, dtype=None, order=None, *, copy=None, blocking=False):
    """A device array: no transfer for a device array, one host->device copy otherwise."""
    if isinstance(a, ndarray):
        if dtype is None or np.dtype(dtype) == a.dtype:
            return ndarray._of(a._a.copy()) if copy else a
        return ndarray._of(a._a.astype(dtype))
    _count("h2d", "cupy.asarray")
    return ndarray._of(np.array(a, dtype=dtype, order=order or "K"))


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, *, blocking=False):
    if isinstance(obj, ndarray):
        a = np.array(obj._a, dtype=dtype, copy=copy, order=order, ndmin=ndmin)
        return obj if a is obj._a else ndarray._of(a)
    _count("h2d", "cupy.array")
    return ndarray._of(np.array(obj, dtype=dtype, order=order, ndmin=ndmin))


def asnumpy(a, stream=None, order="C", out=None, *, blocking=True):
    if isinstance(a, ndarray):
        return a.get(order=order, out=out)
    return np.asarray(a, order=order)


def get_array_module(*args):
    return _modules["cupy"] if any(isinstance(a, ndarray) for a in args) else np


def _scatter_add(a, slices, value):
    """cupyx.scatter_add: a[slices] += value with repeated indices accumulated."""
    np.add.at(_unwrap(a, "cupyx.scatter_add"), _index(slices, "cupyx.scatter_add"),
              _unwrap(value, "cupyx.scatter_add"))


@contextlib.contextmanager
def _allow_synchronize(allow):
    prev = _state["allow_sync"]
    _state["allow_sync"] = bool(allow)
    try:
        yield
    finally:
        _state["allow_sync"] = prev


class _MemoryPool:
    """Has the methods of CuPy's MemoryPool; the stand-in has no device memory: all 0."""

    def used_bytes(self):
        return 0

    def total_bytes(self):
        return 0

    def free_bytes(self):
        return 0

    def free_all_blocks(self, stream=None):
        pass

    def malloc(self, size):
        return _MemoryPointer(size)


class _MemoryPointer:
    """What an allocator returns (cupy.cuda.MemoryPointer); nothing is allocated here."""

    def __init__(self, size):
        self.size = size
        self.ptr = 0


def _set_allocator(allocator=None):
    """cupy.cuda.set_allocator: the stand-in keeps the allocator and calls it for nothing
    (it has no device memory), so only that it is accepted is tested."""
    _state["allocator"] = allocator


_POOL = _MemoryPool()


class _RandomState:
    """cupy.random.RandomState(seed, method): seed() and random_sample() (NumPy's MT inside,
    so the numbers differ from cuRAND's; their use, not their values, is what is tested)."""

    def __init__(self, seed=None, method=None):
        self.method = method
        self.seed(seed)

    def seed(self, seed=None):
        self._rs = np.random.RandomState(None if seed is None else int(seed) % 2 ** 32)

    def random_sample(self, size=None, dtype=float):
        return ndarray._of(np.asarray(self._rs.random_sample(size), dtype=dtype))


def _runtime_module():
    rt = types.ModuleType("cupy.cuda.runtime")
    rt.getDeviceCount = lambda: NUM_DEVICES
    rt.getDevice = lambda: _state["device"]
    rt.runtimeGetVersion = lambda: 12080
    rt.driverGetVersion = lambda: 12080
    rt.getDeviceProperties = lambda i: {"name": b"CuPy stand-in (NumPy on the CPU)",
                                        "totalGlobalMem": 0, "major": 9, "minor": 0}
    rt.deviceSynchronize = lambda: transfers.__setitem__("sync", transfers["sync"] + 1)
    return rt


# cuRAND's generator types that minswin names (their enum values in cuRAND)
_CURAND = {"CURAND_RNG_PSEUDO_PHILOX4_32_10": 161, "CURAND_RNG_PSEUDO_DEFAULT": 100}


# ---------------------------------------------------------------------------- install

_modules = {}


def build():
    """The stand-in's modules, by name: cupy, cupy.cuda, ..., cupyx.scipy.special."""
    if _modules:
        return _modules
    cp = types.ModuleType("cupy", __doc__)
    cp.__version__ = __version__
    cp.__file__ = __file__
    cp.ndarray = ndarray
    cp.ufunc = ufunc
    for name in _UFUNCS:
        setattr(cp, name, ufunc(name))
    for name, kw in _FUNCTIONS.items():
        setattr(cp, name, _function(name, kw))
    for name, kw in _CREATION.items():
        setattr(cp, name, _function(name, kw, arrays=False))
    for name in _PASS_THROUGH:
        setattr(cp, name, getattr(np, name))
    cp.asarray, cp.array, cp.asnumpy = asarray, array, asnumpy
    cp.get_array_module = get_array_module
    cp.get_default_memory_pool = lambda: _POOL

    cuda = types.ModuleType("cupy.cuda")
    cuda.Device = _Device
    cuda.runtime = _runtime_module()
    cuda.is_available = lambda: True
    cuda.get_device_id = lambda: _state["device"]
    cuda.set_allocator = _set_allocator
    cuda.curand = types.ModuleType("cupy.cuda.curand")
    for name, value in _CURAND.items():
        setattr(cuda.curand, name, value)
    cp.cuda = cuda

    rnd = types.ModuleType("cupy.random")
    rnd.RandomState = _RandomState
    cp.random = rnd

    cx = types.ModuleType("cupyx")
    cx.scatter_add = _scatter_add
    cx.allow_synchronize = _allow_synchronize
    cx.DeviceSynchronized = DeviceSynchronized
    cx.scipy = types.ModuleType("cupyx.scipy")
    cx.scipy.special = types.ModuleType("cupyx.scipy.special")
    from scipy.special import erf  # a NumPy ufunc, like CuPy's erf
    cx.scipy.special.erf = ufunc("erf", np_ufunc=erf)
    _modules.update({"cupy": cp, "cupy.cuda": cuda, "cupy.cuda.runtime": cuda.runtime,
                     "cupy.cuda.curand": cuda.curand, "cupy.random": rnd, "cupyx": cx,
                     "cupyx.scipy": cx.scipy, "cupyx.scipy.special": cx.scipy.special})
    return _modules


def install():
    """Put the stand-in in sys.modules as cupy and cupyx (replacing any real CuPy)."""
    for name in list(sys.modules):
        if name.split(".")[0] in ("cupy", "cupyx", "cupy_backends"):
            del sys.modules[name]
    sys.modules.update(build())
    return sys.modules["cupy"]


# ---------------------------------------------------------------------------- the API check

def check_against(real):
    """Problems found comparing the stand-in's names and keywords with a real CuPy module:
    a list of strings, empty when every name exists there and takes those keywords."""
    import inspect
    import re
    problems = []

    def params(f):
        try:
            ps = inspect.signature(f).parameters.values()
        except (TypeError, ValueError):                    # Cython: the docstring's first line
            m = re.search(r"\((.*)\)", (f.__doc__ or "").splitlines()[0] if f.__doc__ else "")
            if not m:
                return None
            names = [p.strip().split("=")[0].split()[-1].lstrip("*")
                     for p in m.group(1).split(",") if p.strip() not in ("", "*", "/")]
            return set(names), "**kwargs" in m.group(1)
        return ({p.name for p in ps if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)},
                any(p.kind == p.VAR_KEYWORD for p in ps))

    def keywords(where, f, allowed):
        if isinstance(f, real.ufunc):
            extra = set(allowed) - {"out", "dtype", "casting"}
        else:
            got = params(f)
            if got is None:
                problems.append(f"{where}: no signature to check keywords against")
                return
            names, var_kw = got
            extra = set() if var_kw else set(allowed) - names
        if extra:
            problems.append(f"{where}: CuPy takes no keyword {sorted(extra)}")

    for name in _UFUNCS:
        if not hasattr(real, name):
            problems.append(f"cupy.{name}: missing")
        else:
            keywords(f"cupy.{name}", getattr(real, name), ufunc._kw)
    for table in (_FUNCTIONS, _CREATION):
        for name, allowed in table.items():
            if not hasattr(real, name):
                problems.append(f"cupy.{name}: missing")
            else:
                keywords(f"cupy.{name}", getattr(real, name), allowed)
    for name, allowed in _METHODS.items():
        if not hasattr(real.ndarray, name):
            problems.append(f"cupy.ndarray.{name}: missing")
        else:
            keywords(f"cupy.ndarray.{name}", getattr(real.ndarray, name), allowed)
    for name in ("shape", "dtype", "ndim", "size", "itemsize", "nbytes", "strides", "flags", "T",
                 "device", "get", "set", "item", "tolist", "__array__", "__float__",
                 "__bool__", "__int__", "__iter__", "__len__", "__matmul__", "__iadd__"):
        if not hasattr(real.ndarray, name):
            problems.append(f"cupy.ndarray.{name}: missing")
    for name in _PASS_THROUGH + ("asarray", "array", "asnumpy", "get_array_module",
                                 "get_default_memory_pool"):
        if not hasattr(real, name):
            problems.append(f"cupy.{name}: missing")
    for name in ("asarray", "array", "asnumpy"):
        keywords(f"cupy.{name}", getattr(real, name),
                 params(globals()[name])[0] - {"a", "obj"})
    for name in ("getDeviceCount", "getDevice", "runtimeGetVersion", "driverGetVersion",
                 "getDeviceProperties", "deviceSynchronize"):
        if not hasattr(real.cuda.runtime, name):
            problems.append(f"cupy.cuda.runtime.{name}: missing")
    for name in ("id", "synchronize", "use", "compute_capability", "__enter__"):
        if not hasattr(real.cuda.Device, name):
            problems.append(f"cupy.cuda.Device.{name}: missing")
    for name in ("used_bytes", "total_bytes", "free_bytes", "free_all_blocks"):
        if not hasattr(real.get_default_memory_pool(), name):
            problems.append(f"cupy memory pool .{name}: missing")
    for name in ("seed", "random_sample"):
        if not hasattr(real.random.RandomState, name):
            problems.append(f"cupy.random.RandomState.{name}: missing")
    problems += _check_ufunc_methods(real) + _check_memory_and_random(real)
    import cupyx
    import cupyx.scipy.special
    for obj, name in ((cupyx, "scatter_add"), (cupyx, "allow_synchronize"),
                      (cupyx, "DeviceSynchronized"), (cupyx.scipy.special, "erf")):
        if not hasattr(obj, name):
            problems.append(f"{obj.__name__}.{name}: missing")
    return problems


def _check_ufunc_methods(real):
    """ufunc.at / .reduce: CuPy refuses the ones it lacks with NotImplementedError before it
    touches the GPU, so calling them on a dummy object tells, without a GPU, which it has."""
    problems = []

    class Dummy:
        pass
    for name in _UFUNCS:
        for method, allowed in (("at", _UFUNC_AT), ("reduce", _UFUNC_REDUCE)):
            f = getattr(getattr(real, name, None), method, None)
            if f is None:
                continue                                   # the name check reports it
            try:
                f(Dummy()) if method == "reduce" else f(Dummy(), None)
                has = True
            except NotImplementedError:
                has = False
            except Exception:                              # got past the check: it exists
                has = True
            if name in allowed and not has:
                problems.append(f"cupy.{name}.{method}: not supported by CuPy")
    return problems


def _check_memory_and_random(real):
    """What benchmarks/bench_swin.py (set_allocator, the pool's malloc) and DropPath
    (minswin.backend.random_uniform: cuRAND's Philox through RandomState) use."""
    problems = []
    if not hasattr(real.cuda, "set_allocator"):
        problems.append("cupy.cuda.set_allocator: missing")
    if not hasattr(real.get_default_memory_pool(), "malloc"):
        problems.append("cupy memory pool .malloc: missing")
    try:
        curand = real.cuda.curand                          # loads libcurand
    except Exception as err:
        problems.append(f"cupy.cuda.curand: cannot be read here ({type(err).__name__}: "
                        f"{str(err).splitlines()[0]}); install nvidia-curand-cu12")
    else:
        for name, value in _CURAND.items():
            if getattr(curand, name, None) != value:
                problems.append(f"cupy.cuda.curand.{name}: CuPy has "
                                f"{getattr(curand, name, 'no such name')}, the stand-in {value}")
    import inspect
    for what, f, allowed in (("cupy.random.RandomState", real.random.RandomState,
                              ("seed", "method")),
                             ("cupy.random.RandomState.random_sample",
                              real.random.RandomState.random_sample, ("size", "dtype"))):
        names = set(inspect.signature(f).parameters)
        if set(allowed) - names:
            problems.append(f"{what}: CuPy takes no keyword {sorted(set(allowed) - names)}")
    try:
        from cupy._core.flags import Flags
        missing = [n for n in _Flags.__slots__ if not hasattr(Flags, n)]
        if missing:
            problems.append(f"cupy.ndarray.flags: no {missing}")
    except ImportError as err:
        problems.append(f"cupy.ndarray.flags: its class cannot be found ({err})")
    return problems
