"""Figure 6: attention weights of one window, per head, and one query's attention drawn on
the input image.

The weights are the softmax probabilities the model kept from its last forward pass
(`block.attention_weights()`, (B, nW, nH, N, N)); where each token of a window sits on the
map comes from `geometry.token_positions`, i.e. from the same roll and partition.
"""
import numpy as np
from matplotlib.patches import Rectangle

from ..checks import check_positive_int
from ..ops.masks import forward_window_shift
from ._common import (
    check_heads,
    check_window_id,
    draw_boundaries,
    host,
    host_image,
    new_figure,
    suptitle,
    token_ticks,
)
from .geometry import token_positions


def _window_weights(attn, batch=0, window_id=0):
    """(nH, N, N) weights of one window from (B, nW, nH, N, N) or (nH, N, N)."""
    a = host(attn)
    if a.ndim == 5:
        B, nW = a.shape[:2]
        window_id = check_window_id(window_id, nW, f"the attention weights hold {nW} windows")
        if not 0 <= batch < B:
            raise ValueError(f"batch: expected 0 <= batch < {B}, got {batch}")
        a = a[batch, window_id]
    if a.ndim != 3 or a.shape[1] != a.shape[2]:
        raise ValueError(f"attn: expected (B, nW, nH, N, N) or (nH, N, N), got {a.shape}")
    return a


def plot_window_attention(attn, window_id=0, heads=None, batch=0, name="", max_heads=6):
    """The (N, N) attention probabilities of one window, one panel per head.

    axes[k]'s first image is attn[batch, window_id, heads[k]] (rows sum to 1).
    """
    a = _window_weights(attn, batch, window_id)            # (nH, N, N)
    nH, N = a.shape[0], a.shape[1]
    M = int(round(np.sqrt(N)))
    heads = check_heads(heads, nH, max_heads)
    cols = min(3, len(heads))
    rows = -(-len(heads) // cols)
    fig = new_figure(4.6 * cols + 0.8, 4.3 * rows + 1.3)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False).ravel())
    vmax = float(a[heads].max())
    for k, h in enumerate(heads):
        ax = axes[k]
        im = ax.imshow(a[h], cmap="magma", vmin=0, vmax=vmax, interpolation="nearest")
        token_ticks(ax, N, M)
        ax.set_xlabel("key token j")
        ax.set_ylabel("query token i")
        ax.set_title(f"head {h}", fontsize=10)
    for ax in axes[len(heads):]:
        ax.axis("off")
    bar = fig.colorbar(im, ax=axes[:len(heads)].tolist(), shrink=0.85)
    bar.set_label("attention weight (softmax, each row sums to 1)")
    suptitle(fig, f"Attention weights of window {window_id}{' in ' + name if name else ''}: "
                  f"{len(heads)} of {nH} heads, {N}x{N} each")
    return fig


def query_heat(weights, positions, query, map_hw):
    """One query's weights placed on the map: (H, W) with NaN outside the window.

    weights (N, N) of one head, positions (N, 2) map (row, col) of the window's tokens.
    Tokens that sit in the padding (row >= H or col >= W) are left out.
    """
    H, W = map_hw
    heat = np.full((H, W), np.nan)
    for n, (r, c) in enumerate(positions):
        if r < H and c < W:
            heat[r, c] = weights[query, n]
    return heat


def plot_query_attention(image, attn, map_hw, window, shift=0, window_id=0, query=None,
                         heads=None, batch=0, name="", max_heads=3):
    """One query token's attention over its window, drawn on the input image.

    Args: image: (H_img, W_img, 3) in [0, 1] (or (1, ...)); attn: (B, nW, nH, N, N) from
    `attention_weights()`; map_hw: the block's (H, W) in tokens; window, shift: the block's M
    and S (per axis as used at run time); query: token index in the window (default centre).
    axes[0] shows the image with the window; axes[k+1] overlays query_heat(...) of heads[k].
    """
    img = np.clip(host_image(image, batch), 0, 1)
    H, W = map_hw
    M = check_positive_int("window", window)
    (Hp, Wp), _ = forward_window_shift(H, W, M, 0)         # the padded map the block used
    nW = (Hp // M) * (Wp // M)
    window_id = check_window_id(window_id, nW, f"the {H}x{W} map has {nW} windows of {M}x{M}")
    a = _window_weights(attn, batch, window_id)            # (nH, N, N)
    nH, N = a.shape[0], a.shape[1]
    if N != M * M:
        raise ValueError(f"attn: windows of {N} tokens do not match window={M}")
    q = N // 2 if query is None else int(query)
    if not 0 <= q < N:
        raise ValueError(f"query: expected 0 <= query < {N}, got {q}")
    heads = check_heads(heads, nH, max_heads)
    pos = token_positions(Hp, Wp, M, shift)[window_id]    # (N, 2)
    ph, pw = img.shape[0] / H, img.shape[1] / W            # pixels per token
    ext = (0, img.shape[1], img.shape[0], 0)
    inside = np.zeros((H, W), dtype=np.int64)
    for r, c in pos:
        if r < H and c < W:
            inside[r, c] = 1
    qr, qc = pos[q]
    fig = new_figure(4.4 * (len(heads) + 1) + 0.8, 5.6)
    axes = fig.subplots(1, len(heads) + 1)
    ax = axes[0]
    ax.imshow(img, extent=ext)
    ax.imshow(np.where(inside == 1, np.nan, 0.0), extent=ext, cmap="Greys", vmin=-1, vmax=0,
              alpha=0.4, interpolation="nearest")
    draw_boundaries(ax, inside, color="yellow", lw=1.5, transform=_token_transform(ax, ph, pw))
    ax.set_title(f"input; window {window_id} outlined in yellow,\nquery token {q} boxed in cyan",
                 fontsize=10)
    for ax_ in axes:
        ax_.add_patch(Rectangle((qc * pw, qr * ph), pw, ph, fill=False, ec="cyan", lw=2))
    for k, h in enumerate(heads):
        ax = axes[k + 1]
        heat = query_heat(a[h], pos, q, (H, W))            # (H, W)
        ax.imshow(img, extent=ext)
        im = ax.imshow(heat, extent=ext, cmap="inferno", alpha=0.75, interpolation="nearest",
                       vmin=np.nanmin(heat), vmax=np.nanmax(heat))
        draw_boundaries(ax, inside, color="white", lw=1.0, transform=_token_transform(ax, ph, pw))
        ax.set_title(f"head {h}: weights of query {q} over\nthe {N} keys of its window (zoomed)",
                     fontsize=10)
        bar = fig.colorbar(im, ax=ax, shrink=0.75, label="attention weight")
        bar.ax.axhline(1 / N, color="cyan", lw=1.5)         # what uniform attention would give
        bar.ax.text(1.05, 1 / N, " 1/N", transform=bar.ax.get_yaxis_transform(), va="center",
                    fontsize=7, color="teal")
    rr, cc = pos[:, 0].clip(max=H - 1), pos[:, 1].clip(max=W - 1)
    pad_r, pad_c = max(2, M // 2), max(2, M // 2)            # zoom: the window and a margin
    top, bottom = max(rr.min() - pad_r, 0) * ph, min(rr.max() + 1 + pad_r, H) * ph
    left, right = max(cc.min() - pad_c, 0) * pw, min(cc.max() + 1 + pad_c, W) * pw
    for ax in axes[1:]:
        ax.set_xlim(left, right)
        ax.set_ylim(bottom, top)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    suptitle(fig, f"Where one query looks{' (' + name + ')' if name else ''}: a {H}x{W}-token "
                  f"map, M={M}, S={shift}; each token covers {ph:g}x{pw:g} pixels")
    return fig


def _token_transform(ax, ph, pw):
    """Data transform mapping token-grid coordinates (imshow cells) to image pixels."""
    from matplotlib.transforms import Affine2D
    return Affine2D().translate(0.5, 0.5).scale(pw, ph) + ax.transData
