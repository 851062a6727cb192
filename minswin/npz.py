"""Reading `.npz` files that may have been written by anyone, without trusting them.

`np.load` returns a member that is not a `.npy` array as raw `bytes`, and allocates the array
a member's header announces before reading a byte of it, so a 200-byte file can ask for
terabytes. `read_npz` reads each member's header first and refuses, with the member's name:

* a member that is not a NumPy array (no `.npy` header: an empty member, a text file);
* object arrays (they would need unpickling) and structured or other non-numeric dtypes
  (unicode strings only where `text_ok` names the member, for minswin's own metadata);
* a header that announces more bytes than the member holds, or more than `max_bytes` in all.

Memory is taken only for bytes that are really in the file.
"""
import io
import math
import os
import zipfile

import numpy as np

NUMERIC_KINDS = "biufc"           # bool, int, uint, float, complex


class BadNpz(ValueError):
    """A member of the .npz is not an array minswin reads; the message names it."""


def _header(f, key):
    """(shape, fortran_order, dtype) from a member's .npy header."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
    except ValueError:
        raise BadNpz(f"member {key!r} is not a NumPy array (no .npy header: empty, text or "
                     "another kind of file)") from None
    try:
        if version == (1, 0):
            return fmt.read_array_header_1_0(f)
        if version == (2, 0):
            return fmt.read_array_header_2_0(f)
    except (ValueError, SyntaxError, TypeError) as err:
        raise BadNpz(f"member {key!r} has a malformed .npy header ({err})") from None
    raise BadNpz(f"member {key!r} is a .npy file of version {version[0]}.{version[1]}; "
                 "minswin reads versions 1.0 and 2.0 (what np.savez writes for numbers)")


def _read_member(zf, info, key, text_ok, budget, file_size):
    with zf.open(info) as f:
        shape, fortran, dtype = _header(f, key)
        if dtype.hasobject:
            raise BadNpz(f"member {key!r} holds object arrays, which only pickle can read; "
                         "minswin refuses them. Save plain numeric arrays")
        if dtype.kind not in NUMERIC_KINDS and not (text_ok and dtype.kind == "U"):
            raise BadNpz(f"member {key!r} has dtype {dtype}; expected numbers (bool, int, "
                         "float or complex)")
        count = math.prod(shape)
        nbytes = count * dtype.itemsize
        left = info.file_size - f.tell()
        if nbytes > left:
            raise BadNpz(f"member {key!r} announces shape {tuple(shape)} of {dtype} "
                         f"({nbytes:,} bytes) but holds {max(left, 0):,} bytes")
        if budget is not None and nbytes > budget:
            raise BadNpz(f"member {key!r} announces shape {tuple(shape)} of {dtype} "
                         f"({nbytes:,} bytes), more than the {budget:,} bytes read here")
        if info.compress_type == zipfile.ZIP_STORED and nbytes <= file_size:
            data = bytearray(nbytes)                       # its bytes are in the file itself
            got = f.readinto(data)
        else:                                              # compressed: take what comes
            data = bytearray(f.read(nbytes))
            got = len(data)
        if got != nbytes:
            raise BadNpz(f"member {key!r} is cut short ({got:,} of {nbytes:,} bytes)")
    array = np.frombuffer(data, dtype=dtype, count=count)
    if fortran:
        return array.reshape(shape[::-1]).transpose(), nbytes
    return array.reshape(shape), nbytes


def read_npz(source, *, max_bytes=None, text_ok=()):
    """{name: array} of every member of an .npz (see the module docstring): `source` is its
    path, or its bytes already read.

    max_bytes: the most array bytes read in all (None: what the file holds bounds it).
    text_ok: member names allowed to be unicode strings. Raises BadNpz (a ValueError) for a
    member that is not a numeric array, zipfile.BadZipFile for a file that is not a zip."""
    if isinstance(source, (bytes, bytearray)):
        file_size, source = len(source), io.BytesIO(source)
    else:
        file_size = os.path.getsize(source)
    out, budget = {}, max_bytes
    with zipfile.ZipFile(source) as zf:
        for info in zf.infolist():
            name = info.filename
            key = name[:-4] if name.endswith(".npy") else name
            if key in out:
                raise BadNpz(f"member {key!r} appears twice")
            out[key], nbytes = _read_member(zf, info, key, key in text_ok, budget, file_size)
            if budget is not None:
                budget -= nbytes
    return out
