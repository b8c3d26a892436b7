"""Draw learned stage graphs with matplotlib.

Each stage is a panel: its nodes (blocks, then the output node) sit on a
line in order, each edge ``i -> j`` (always left to right) is an arc above
it, higher the further it reaches. Colour gives the sign and width the
magnitude of the weight, on one scale for the whole figure. Dead blocks
(no active input, or no path of non-zero edges to the stage output: what
pruning removes, and what eval mode skips) are grey, and so are pruned
edges (weight exactly zero, or at a dead block), thin and dotted. Drawn with
the Agg backend, so it works on machines without a display.
"""
from typing import List, Optional, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.patches import PathPatch
from matplotlib.path import Path

from ..models.graph import StageGraphInfo, prune_graph
from .text import count_blocks

POSITIVE_NEGATIVE = 'coolwarm_r'  # blue: positive, red: negative
PRUNED = '#b0b0b0'
LIVE_NODE = '#2b2b2b'
REMOVED_NODE = '#c8c8c8'


def _arc(i: int, j: int, height: float) -> Path:
    """A quadratic Bezier from node ``i`` to node ``j`` peaking at
    ``height`` (a straight line for neighbours)."""
    return Path([(i, 0.0), ((i + j) / 2, 2 * height), (j, 0.0)],
                [Path.MOVETO, Path.CURVE3, Path.CURVE3])


def _panel(ax, graph: StageGraphInfo, norm: TwoSlopeNorm, cmap,
           name: str) -> None:
    n = graph.num_nodes
    kept = prune_graph(n, graph.edges)[1]
    scale = max(abs(norm.vmin), abs(norm.vmax))
    top = 0.5
    # long edges first, so short ones stay visible on top
    for i, j, w in sorted(graph.edges, key=lambda e: e[0] - e[1]):
        height = 0.0 if j - i == 1 else 0.3 * (j - i)
        top = max(top, height)
        if w == 0 or not (kept[i] and kept[j]):  # pruned, or dead
            style = dict(edgecolor=PRUNED, linewidth=0.6, linestyle=':')
        else:
            style = dict(
                edgecolor=cmap(norm(w)),
                linewidth=0.6 + 3.4 * abs(w) / scale,
                alpha=0.9)
        arc = PathPatch(_arc(i, j, height), facecolor='none', **style)
        arc.set_gid(f'edge {i}->{j}')
        ax.add_patch(arc)
    for k in range(n):
        output = k == n - 1
        color = LIVE_NODE if kept[k] else REMOVED_NODE
        ax.scatter([k], [0],
                   s=70 if output else 45,
                   marker='s' if output else 'o',
                   color=color,
                   zorder=3,
                   gid=f'node {k}')
        ax.annotate(
            'out' if output else str(k), (k, 0),
            xytext=(0, -5),
            textcoords='offset points',
            ha='center',
            va='top',
            fontsize=7,
            color=color)
    dead = sum(not v for v in kept[:-1])
    kind = 'learnable' if graph.learnable else 'fixed'
    ax.set_title(
        f'{name}: {count_blocks(n - 1)}, {graph.active_edges}/'
        f'{len(graph.edges)} edges active, {dead} dead ({kind})',
        fontsize=9,
        loc='left')
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_ylim(-0.25 * top, 1.05 * top)
    ax.axis('off')


def draw_topology(graphs: Sequence[StageGraphInfo],
                  names: Optional[List[str]] = None,
                  title: Optional[str] = None) -> Figure:
    """A figure with one panel per stage.

    Args:
        graphs: what ``backbone.topology_graphs()`` returns.
        names: panel titles (default: each stage's name).
        title: the figure's title.
    """
    names = names or [g.name for g in graphs]
    weights = [w for g in graphs for _, _, w in g.edges] or [1.0]
    scale = max(max(abs(w) for w in weights), 1e-12)
    norm = TwoSlopeNorm(vmin=-scale, vcenter=0.0, vmax=scale)
    cmap = colormaps[POSITIVE_NEGATIVE]
    widths = [g.num_nodes for g in graphs]
    heights = [1.0 + 0.12 * w for w in widths]
    fig = Figure(
        figsize=(max(6.0, 0.45 * max(widths) + 1.5), sum(heights) + 0.6),
        layout='constrained')
    FigureCanvasAgg(fig)
    axes = fig.subplots(
        len(graphs), 1, squeeze=False,
        gridspec_kw=dict(height_ratios=heights))[:, 0]
    for ax, graph, name in zip(axes, graphs, names):
        _panel(ax, graph, norm, cmap, name)
    bar = fig.colorbar(
        ScalarMappable(norm=norm, cmap=cmap),
        ax=list(axes),
        fraction=0.025,
        pad=0.01)
    bar.set_label(
        'edge weight (dotted grey: pruned; grey node: dead)', fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def figure_to_rgb(fig: Figure) -> np.ndarray:
    """The figure as an ``(H, W, 3)`` uint8 RGB array, as mmengine's
    visualizer backends take images."""
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else \
        FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
