"""Pictures of Swin drawn from the arrays minswin computes (matplotlib, headless).

Every function returns a `matplotlib.figure.Figure` and never calls `plt.show()`; arrays may
live on NumPy or CuPy (they are copied to the host to draw). Save with `save_figure(fig,
"name.png" | ".svg" | ".pdf")`.

    windows    plot_window_partition          regular vs shifted windows (grid or image)
    shift      plot_cyclic_shift, save_shift_gif   the roll step by step, and animated
               plot_region_numbering          the nine regions' numbers, before and after it
    masks      plot_window_mask, plot_stage_masks  region labels and the (N, N) shift masks
    position   plot_index_walkthrough, plot_relative_position_index
    bias       plot_relative_position_bias    a head's (2M-1)^2 table and its (N, N) bias
    attention  plot_window_attention, plot_query_attention
    merging    plot_patch_merging             the x0, x1, x2, x3 sub-grids on channels
    hierarchy  plot_hierarchy                 the stages of a model from a real forward pass
    cost       plot_attention_cost            MSA vs W-MSA multiply-accumulates
    v2         plot_log_spaced_coordinates, plot_cpb_table, plot_table_resize,
               plot_window_transfer           Swin V2's position bias; another window
    notebook   show                           a figure inline in a notebook and as a PNG file
"""
from ._common import save_figure
from .attention import plot_query_attention, plot_window_attention, query_heat
from .bias import gathered_bias, plot_relative_position_bias
from .cost import attention_costs, plot_attention_cost
from .geometry import (
    central_window,
    regions_in_windows,
    token_positions,
    unrolled_region_labels,
    window_ids,
)
from .hierarchy import plot_hierarchy, stage_summary
from .image import normalise, sample_image, synthetic_scene
from .masks import plot_stage_masks, plot_window_mask
from .merging import merging_arrays, plot_patch_merging
from .notebook import figures_folder, show
from .position import index_steps, plot_index_walkthrough, plot_relative_position_index
from .shift import (
    plot_cyclic_shift,
    plot_region_numbering,
    save_shift_gif,
    shift_animation,
    shift_steps,
)
from .v2 import (
    attention_cpb_table,
    cpb_table,
    plot_cpb_table,
    plot_log_spaced_coordinates,
    plot_table_resize,
    plot_window_transfer,
)
from .windows import plot_window_partition

__all__ = [
    "attention_costs", "central_window", "figures_folder", "gathered_bias", "index_steps",
    "merging_arrays", "normalise", "plot_attention_cost", "plot_cyclic_shift", "plot_hierarchy",
    "plot_index_walkthrough", "plot_patch_merging", "plot_query_attention",
    "plot_relative_position_bias", "plot_relative_position_index", "plot_stage_masks",
    "plot_window_attention", "plot_window_mask", "plot_window_partition", "query_heat",
    "plot_region_numbering", "regions_in_windows", "unrolled_region_labels", "sample_image",
    "save_figure", "save_shift_gif", "shift_animation", "shift_steps", "stage_summary",
    "synthetic_scene", "token_positions", "window_ids",
    "attention_cpb_table", "cpb_table", "plot_cpb_table", "plot_log_spaced_coordinates",
    "plot_table_resize", "plot_window_transfer",
    "figures_folder", "show",
]
