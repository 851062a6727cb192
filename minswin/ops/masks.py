"""The constants of window attention: the relative position index and the shift mask.

Symbols: H, W map size (already padded to multiples of M); M window side; N = M*M;
nW = (H/M)*(W/M) windows; S = (sh, sw) shift.

Nothing here is learned. Both arrays depend only on (H, W, M, S), so they are built once per
shape, on the host with NumPy, cached, and moved to the backend that asks for them. Each has a
literal construction that reads like the explanation (region labels, then a pairwise
comparison; coordinates, then differences) and is the version the tests and pictures use.
"""
from collections import OrderedDict

import numpy as np

from ..backend import default_xp, device_key, to_backend
from ..checks import check_positive_int
from .window import as_pair, window_partition

# The additive mask value of the official code (`masked_fill(attn_mask != 0, float(-100.0))`).
# exp(-100) ~ 4e-44: far below float32's resolution next to any unmasked logit, but finite,
# so a fully masked row could never produce NaN (here no row is: each keeps its diagonal)
MASK_VALUE = -100.0


# ---------------------------------------------------------------------------- relative position

def relative_coordinates(window):
    """Query-minus-key offsets of the tokens of an M x M window: (2, N, N).

    rel[0, i, j] = row_i - row_j and rel[1, i, j] = col_i - col_j, token n = r*M + c.
    """
    M = check_positive_int("window", window)
    rows, cols = np.meshgrid(np.arange(M), np.arange(M), indexing="ij")   # (M, M) each
    coords = np.stack([rows.ravel(), cols.ravel()])        # (2, N)
    return coords[:, :, None] - coords[:, None, :]         # (2, N, N)


def relative_position_index(window):
    """The (N, N) index into the ((2M-1)^2, nH) bias table: which offset each pair has.

    index[i, j] = (dr + M - 1) * (2M - 1) + (dc + M - 1), dr/dc = query minus key position.
    Shifting by M-1 makes the offsets 0..2M-2; multiplying the row part by 2M-1 (the number of
    possible column offsets) makes every (dr, dc) pair land on its own row of the table.
    For M=2 this is [[4,3,1,0],[5,4,2,1],[7,6,4,3],[8,7,5,4]].
    """
    return _relative_position_index(check_positive_int("window", window)).copy()


def _relative_position_index(M):
    return _host_cache.get(("index", M), lambda: _build_relative_position_index(M))


def _build_relative_position_index(M):
    rel = relative_coordinates(M)                          # (2, N, N)
    dr, dc = rel[0] + (M - 1), rel[1] + (M - 1)            # (N, N) each, in 0..2M-2
    index = dr * (2 * M - 1) + dc                          # (N, N)
    index.setflags(write=False)
    return index


# ---------------------------------------------------------------------------- shift mask

def check_window_shift(H, W, window, shift):
    """Validate a (padded) map size, window and shift; return (M, (sh, sw))."""
    M = check_positive_int("window", window)
    for name, v in (("H", H), ("W", W)):
        check_positive_int(name, v)
        if v % M:
            raise ValueError(f"{name}: expected a multiple of window={M} (pad the map to "
                             f"{v + (-v) % M} first), got {v}")
    sh, sw = as_pair("shift", shift)
    for s in (sh, sw):
        if not 0 <= s < M:
            raise ValueError(f"shift: expected 0 <= shift < window={M}, got {shift!r}")
    return M, (sh, sw)


def _axis_slices(M, s):
    """The three bands of one axis in the shifted frame (official): [0, -M), [-M, -s), [-s, end).

    With no shift on this axis the whole axis is one band.
    """
    if s == 0:
        return (slice(0, None),)
    return (slice(0, -M), slice(-M, -s), slice(-s, None))


def region_labels(H, W, window, shift):
    """Label each token of the shifted (rolled) H x W map with its region, (H, W) ints.

    Regions are the bands of the official code, label = 3*row_band + col_band, so the nine
    regions of a shifted map are 0..8. Tokens in the same window with different labels were
    not neighbours before the roll. For H=W=4, M=2, S=1:
    [[0,0,1,2],[0,0,1,2],[3,3,4,5],[6,6,7,8]].
    """
    M, (sh, sw) = check_window_shift(H, W, window, shift)
    labels = np.zeros((H, W), dtype=np.int64)
    for i, hs in enumerate(_axis_slices(M, sh)):
        for j, ws in enumerate(_axis_slices(M, sw)):
            labels[hs, ws] = 3 * i + j
    return labels


def window_labels(H, W, window, shift):
    """Region labels of the tokens of each window: (nW, N)."""
    labels = region_labels(H, W, window, shift)            # (H, W)
    M = int(window)
    win = window_partition(labels[None, :, :, None].astype(np.float64), M)   # (nW, M, M, 1)
    return win.reshape(-1, M * M).astype(np.int64)         # (nW, N)


def attention_mask(H, W, window, shift):
    """The additive shift mask, (nW, N, N) of 0.0 (same region) and -100.0 (different).

    mask[w, i, j] = 0 if tokens i and j of window w carry the same region label, else -100.
    It is added to the attention logits of window w (after the bias, before softmax), so a
    query only attends to keys from its own region. Returned as a float64 NumPy array on the
    host; models use the cached, backend-placed copy from `cached_attention_mask`.
    """
    return _attention_mask(*_mask_key(H, W, window, shift)).copy()


def _mask_key(H, W, window, shift):
    M, (sh, sw) = check_window_shift(H, W, window, shift)
    return int(H), int(W), M, sh, sw


def _attention_mask(H, W, M, sh, sw):
    return _host_cache.get(("mask", H, W, M, sh, sw), lambda: _build_attention_mask(H, W, M,
                                                                                    sh, sw))


def _build_attention_mask(H, W, M, sh, sw):
    lab = window_labels(H, W, M, (sh, sw))                 # (nW, N)
    differ = lab[:, :, None] != lab[:, None, :]            # (nW, N, N)
    mask = np.where(differ, MASK_VALUE, 0.0)               # (nW, N, N)
    mask.setflags(write=False)
    return mask


def attention_mask_slow(H, W, window, shift):
    """The same mask built one window and one pair at a time (the literal definition)."""
    lab = window_labels(H, W, window, shift)               # (nW, N)
    nW, N = lab.shape
    mask = np.zeros((nW, N, N))
    for w in range(nW):
        for i in range(N):
            for j in range(N):
                if lab[w, i] != lab[w, j]:
                    mask[w, i, j] = MASK_VALUE
    return mask


# ---------------------------------------------------------------------------- caches

class ConstantCache:
    """Arrays kept for reuse, the least recently used dropped first, `max_bytes` in all.

    An array larger than a quarter of the budget is built each time it is asked for and never
    kept: `relative_position_index(100)` is (10^4, 10^4) int64, 800 MB, and must not stay in
    memory for the life of the process because one picture asked for it once.
    """

    def __init__(self, max_bytes):
        self.max_bytes = max_bytes
        self.nbytes = 0
        self._items = OrderedDict()

    def get(self, key, make):
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        a = make()
        if a.nbytes <= self.max_bytes // 4:
            self._items[key] = a
            self.nbytes += a.nbytes
            while self.nbytes > self.max_bytes:
                _, old = self._items.popitem(last=False)
                self.nbytes -= old.nbytes
        return a

    def __len__(self):
        return len(self._items)

    def clear(self):
        self._items.clear()
        self.nbytes = 0


_host_cache = ConstantCache(256 << 20)      # NumPy builds (float64 masks, int64 indices)
_device_cache = ConstantCache(256 << 20)    # their copies per device and dtype


def _on_backend(key, make, xp, dtype):
    """Built once per (key, device, dtype) and shared by every block that needs it.

    Keyed by device ("cpu", "cuda:0", "cuda:1", ...), not by library: a copy on one GPU is
    never handed to an op on another. On NumPy the copy is made read-only, as a stray in-place
    edit would otherwise change every block; CuPy arrays have no such flag, so there a test
    (tests/test_gpu_paths.py) freezes the cached arrays on the CuPy stand-in and proves that a
    model's forward and backward never write into them.
    """
    xp = xp or default_xp()

    def build():
        a = to_backend(make().astype(dtype), xp)
        if xp is np:
            a.setflags(write=False)
        return a
    return _device_cache.get((key, device_key(xp), np.dtype(dtype).str), build)


def cached_relative_position_index(window, xp=None):
    """The index (N, N) int64 on backend xp, built once."""
    M = check_positive_int("window", window)
    return _on_backend(("index", M), lambda: _relative_position_index(M), xp, np.int64)


def cached_attention_mask(H, W, window, shift, xp=None, dtype=np.float32):
    """The mask (nW, N, N) on backend xp in `dtype`, or None when there is no shift."""
    key = _mask_key(H, W, window, shift)
    if key[3] == 0 and key[4] == 0:
        return None
    return _on_backend(("mask",) + key, lambda: _attention_mask(*key), xp, dtype)


# ---------------------------------------------------------------------------- which window/shift

def official_window_shift(resolution, window, shift):
    """The official shrink rule (docs/semantics.md, section 3), applied when a block is built for
    its resolution.

    If min(H, W) <= M the window becomes min(H, W) and the shift 0: the window already sees
    the whole map, so there is nothing to shift. One scalar for both axes, `<=` as official.
    """
    H, W = resolution
    if min(H, W) <= window:
        return min(H, W), 0
    return window, shift


def forward_window_shift(H, W, window, shift):
    """Padded size and per-axis shift a block uses on an (H, W) map (docs/semantics.md, section 3).

    The map is padded bottom/right to multiples of M; on an axis the window already covers
    (M >= padded size) the shift is 0, as torchvision does.
    Returns ((Hp, Wp), (sh, sw)).
    """
    Hp, Wp = H + (-H) % window, W + (-W) % window
    sh = 0 if window >= Hp else shift
    sw = 0 if window >= Wp else shift
    return (Hp, Wp), (sh, sw)
