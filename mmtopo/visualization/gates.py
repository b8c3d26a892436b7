"""What the routers of a dynamic backbone do over a data set: the gate of
every edge, per instance, summarised as its mean and spread.

:class:`GateRecorder` records the gates each router computes (forward
hooks, nothing in the model changes); :func:`gate_statistics` reduces them
per edge; :func:`draw_gates` draws one panel per stage: a cell per edge
``i -> j`` (row ``i``, column ``j``), coloured by the mean gate and
labelled with it and its standard deviation over the instances. An edge
that is always on has a mean near its usual value and a small spread; an
edge that switches has a large spread, or a share of instances cut by the
threshold. Edges whose weight is zero are marked pruned.
"""
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

GATE_MAP = 'viridis'


class GateRecorder:
    """Collects, per stage and routed node, the ``(N, S)`` gates of every
    forward pass of ``backbone`` while :meth:`recording` is active."""

    def __init__(self, backbone: torch.nn.Module):
        self.backbone = backbone
        routed = [
            (name, j)
            for name, stage in zip(backbone.stage_names, backbone.stage_graphs)
            for j in stage.routers
        ]
        if not routed:
            raise ValueError('the backbone has no routers (no stage with '
                             "topology type 'dynamic'): there are no gates "
                             'to record')
        self.gates: Dict[tuple, List[torch.Tensor]] = {k: [] for k in routed}

    @contextmanager
    def recording(self) -> Iterator['GateRecorder']:
        handles = []
        for name, stage in zip(self.backbone.stage_names,
                               self.backbone.stage_graphs):
            for j, router in stage.routers.items():
                key = (name, j)
                handles.append(
                    router.register_forward_hook(
                        lambda _m, _i, out, key=key: self.gates[key].append(
                            out.detach().float().cpu())))
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()

    @property
    def instances(self) -> int:
        counts = {sum(len(g) for g in gates) for gates in self.gates.values()}
        return max(counts) if counts else 0


def gate_statistics(recorder: GateRecorder) -> List[Dict]:
    """Per stage: ``name``, ``num_nodes``, and ``edges``, a list of dicts
    ``i, j, weight, mean, std, closed`` (the share of instances whose gate
    is 0) for every edge into a routed node."""
    backbone = recorder.backbone
    out = []
    for name, stage in zip(backbone.stage_names, backbone.stage_graphs):
        weights = stage.edge_weights.detach().cpu()
        edges = []
        for j in stage.routers:
            gates = recorder.gates[(name, j)]
            if not gates:
                continue
            g = torch.cat(gates)
            for k, i in enumerate(stage.sources_of(int(j))):
                edges.append(
                    dict(
                        i=i,
                        j=int(j),
                        weight=float(weights[i, int(j)]),
                        mean=float(g[:, k].mean()),
                        std=float(g[:, k].std(unbiased=False)),
                        closed=float((g[:, k] == 0).float().mean())))
        out.append(dict(name=name, num_nodes=len(stage) + 1, edges=edges))
    return out


def draw_gates(stats: List[Dict],
               title: Optional[str] = None,
               instances: Optional[int] = None) -> Figure:
    """One panel per stage with routers (see the module docstring)."""
    panels = [s for s in stats if s['edges']]
    if not panels:
        raise ValueError('no gates were recorded: the data loader gave no '
                         'instance, or the routed nodes never ran')
    norm = Normalize(vmin=0.0, vmax=2.0)
    cmap = colormaps[GATE_MAP]
    sizes = [s['num_nodes'] for s in panels]
    fig = Figure(
        figsize=(max(4.0, 1.45 * sum(sizes) + 1.2), 0.75 * max(sizes) + 1.6),
        layout='constrained')
    FigureCanvasAgg(fig)
    axes = fig.subplots(
        1, len(panels), squeeze=False, gridspec_kw=dict(width_ratios=sizes))[0]
    for ax, stage in zip(axes, panels):
        _gate_panel(ax, stage, norm, cmap)
    bar = fig.colorbar(
        ScalarMappable(norm=norm, cmap=cmap),
        ax=list(axes),
        fraction=0.03,
        pad=0.01)
    bar.set_label('mean gate over instances (1 = the static edge)', fontsize=8)
    heading = title or 'Edge gates'
    if instances is not None:
        heading += f' ({instances} instances)'
    fig.suptitle(
        heading + '\ncell: mean gate, ± std over instances, the '
        'static weight w; grey: no router (one input) or pruned '
        'edge',
        fontsize=9)
    return fig


def _gate_panel(ax, stage: Dict, norm, cmap) -> None:
    n = stage['num_nodes']
    grid = np.full((n - 1, n - 1), np.nan)  # rows: sources, cols: targets
    for e in stage['edges']:
        if e['weight'] != 0:
            grid[e['i'], e['j'] - 1] = e['mean']
    masked = np.ma.masked_invalid(grid)
    shown = cmap.copy()
    shown.set_bad('#e6e6e6')
    ax.imshow(masked, cmap=shown, norm=norm, aspect='equal')
    for e in stage['edges']:
        r, c = e['i'], e['j'] - 1
        if e['weight'] == 0:
            text, color = 'pruned', '#808080'
        else:
            text = (f"{e['mean']:.2f}\n±{e['std']:.2f}\n"
                    f"w {e['weight']:.2f}")
            if e['closed'] > 0:
                text += f"\n{100 * e['closed']:.0f}% cut"
            color = 'white' if e['mean'] < 1.2 else 'black'
        ax.text(c, r, text, ha='center', va='center', fontsize=7, color=color)
    ax.set_xticks(
        range(n - 1), [str(j) if j < n - 1 else 'out' for j in range(1, n)],
        fontsize=7)
    ax.set_yticks(range(n - 1), [str(i) for i in range(n - 1)], fontsize=7)
    ax.set_xlabel('to node', fontsize=8)
    ax.set_ylabel('from node', fontsize=8)
    ax.set_title(stage['name'], fontsize=9)
