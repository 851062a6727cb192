"""The cost argument for windows: global MSA against window MSA, per stage and for the
pixels-as-tokens example of the explainer (the Chinese article on Swin this project grew from),
from `minswin.flops` (multiply-accumulates, as the paper counts).

MSA = 4hwC^2 + 2(hw)^2 C grows with the square of the number of tokens; W-MSA =
4hwC^2 + 2M^2 hwC grows linearly. The bars are the two formulas at each stage's real map.
"""
import numpy as np

from .. import flops
from ._common import new_figure, suptitle


def attention_costs(model):
    """Per stage: (label, h, w, C, M, MSA MACs, W-MSA MACs) of one attention layer."""
    rows = []
    for i, layer in enumerate(model.layers):
        (h, w), C = layer.input_resolution, layer.dim      # the map each stage really gets
        M = layer.blocks[0].window_size
        rows.append((f"stage {i + 1}\n{h}x{w}x{C}, M={M}", h, w, C, M,
                     flops.msa_flops(h, w, C), flops.wmsa_flops(h, w, C, M)))
    return rows


def plot_attention_cost(model, example=(224, 224, 3, 7), name=None):
    """Bars of MSA vs W-MSA MACs for one attention layer of each stage, on a linear scale in
    GMACs (so that the small bars look as small as they are, not cut off by a log axis), and
    the explainer's pixels-as-tokens example (h, w, C, M) with the saving written out.
    axes[0].containers hold the two bar series in stage order, in MACs."""
    rows = attention_costs(model)
    fig = new_figure(13, 5.4)
    ax, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2.2, 1]})
    x = np.arange(len(rows))
    msa = [r[5] for r in rows]
    wmsa = [r[6] for r in rows]
    b1 = ax.bar(x - 0.2, msa, 0.4, label="MSA (global): 4hwC^2 + 2(hw)^2 C", color="#d62728")
    b2 = ax.bar(x + 0.2, wmsa, 0.4, label="W-MSA (windows): 4hwC^2 + 2M^2 hwC",
                color="#1f77b4")
    ax.set_xticks(x, [r[0] for r in rows])
    top = max(msa)
    ax.set_ylim(0, top * 1.25)
    ax.yaxis.set_major_formatter(lambda v, _: f"{v / 1e9:g}")
    ax.set_ylabel("GMACs (10^9 multiply-accumulates) of one attention layer")
    for bars in (b1, b2):
        for bar, v in zip(bars, bars.datavalues):
            ax.text(bar.get_x() + bar.get_width() / 2, v + top * 0.01, f"{v / 1e9:.3f} G",
                    ha="center", va="bottom", fontsize=8)
    for k, (m, wm) in enumerate(zip(msa, wmsa)):           # how many times cheaper
        ax.text(k, max(m, wm) + top * 0.07, f"{m / wm:.1f}x" if m != wm else "same",
                ha="center", va="bottom", fontsize=9, fontweight="bold")
    ax.legend(loc="upper right", fontsize=9)
    ax.set_title(f"{name or 'model'}: one attention layer per stage (bold: MSA / W-MSA)",
                 fontsize=10)
    h, w, C, M = example
    m, wm = flops.msa_flops(h, w, C), flops.wmsa_flops(h, w, C, M)
    ax2.bar([0, 1], [m, wm], color=["#d62728", "#1f77b4"])
    ax2.set_xticks([0, 1], ["MSA", "W-MSA"])
    ax2.set_yscale("log")                                  # 900x apart: linear would hide one
    ax2.set_ylim(1e6, m * 8)
    ax2.set_ylabel("MACs (log scale, from 10^6)")
    for k, v in enumerate((m, wm)):
        ax2.text(k, v * 1.15, f"{v:,}\n= {v / 1e9:.3f} G", ha="center", va="bottom",
                 fontsize=8)
    ax2.set_title(f"pixels as tokens (the explainer's example)\nh=w={h}, C={C}, M={M}: "
                  f"W-MSA saves\n"
                  f"{flops.msa_saving(h, w, C, M):,} MACs ({m / wm:.0f}x fewer)", fontsize=10)
    suptitle(fig, "Why windows: global attention grows with (hw)^2, window attention with hw "
                  "(`minswin.flops`)", fontsize=12)
    return fig
