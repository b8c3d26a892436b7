"""A random sub-graph of a topology backbone at a FLOPs budget (and a
parameter one, where the search had both): the chance baseline a learned,
pruned graph is compared with."""
from typing import Dict, List, Optional, Sequence, Set

import numpy as np

from ..models.graph import StageGraphInfo, prune_graph
from ..utils.complexity import BackboneCosts


def random_subgraph(
        graphs: Sequence[StageGraphInfo],
        costs: BackboneCosts,
        max_flops: float,
        rng: np.random.Generator,
        edge_prob: float = 0.5,
        max_params: Optional[float] = None) -> List[StageGraphInfo]:
    """A random sub-graph of the learnable stages at most ``max_flops``
    (``costs``, pruned at 0), and at most ``max_params`` parameters when
    given, as close to them as whole blocks allow.

    Blocks are removed one at a time, each drawn uniformly from the blocks
    left in any learnable stage, until the graph fits the budget. Among the
    blocks kept, every edge of the supernet is kept with probability
    ``edge_prob``, then repaired as the ``random`` wiring is: a kept node
    without an input gets one from a random earlier kept node, one without
    an output one to a random later kept node. The edges are drawn again
    after every removal. Edge weights are 1 (kept) or 0; fixed stages stay
    as they are.
    """
    kept: Dict[int, Set[int]] = {
        k: set(range(g.num_nodes))
        for k, g in enumerate(graphs) if g.learnable
    }
    while True:
        drawn = [
            _draw(g, kept[k], rng, edge_prob) if k in kept else g
            for k, g in enumerate(graphs)
        ]
        if costs.flops(drawn) <= max_flops and (
                max_params is None or costs.params(drawn) <= max_params):
            return drawn
        blocks = [(k, j) for k, nodes in kept.items() for j in sorted(nodes)
                  if 0 < j < graphs[k].num_nodes - 1]
        if not blocks:
            params = '' if max_params is None else (
                f' and {max_params:.6g} parameters')
            raise ValueError(
                f'no sub-graph of these stages reaches {max_flops:.6g} '
                f'FLOPs{params}: with every block removed it costs '
                f'{costs.flops(drawn):.6g} FLOPs, '
                f'{costs.params(drawn):.6g} parameters')
        k, j = blocks[int(rng.integers(len(blocks)))]
        kept[k].discard(j)


def _draw(graph: StageGraphInfo, nodes: Set[int], rng: np.random.Generator,
          edge_prob: float) -> StageGraphInfo:
    """The stage's edges among ``nodes``, each kept with ``edge_prob``,
    repaired so that every kept node has an input and an output."""
    order = sorted(nodes)
    active = {(i, j)
              for i, j, _ in graph.edges
              if i in nodes and j in nodes and rng.random() < edge_prob}
    for pos, j in enumerate(order[1:], 1):
        if not any(b == j for _, b in active):
            active.add((order[int(rng.integers(pos))], j))
    for pos, i in enumerate(order[:-1]):
        if not any(a == i for a, _ in active):
            later = order[pos + 1:]
            active.add((i, later[int(rng.integers(len(later)))]))
    edges = tuple(
        (i, j, 1.0 if (i, j) in active else 0.0) for i, j, _ in graph.edges)
    return StageGraphInfo(graph.name, graph.num_nodes, graph.learnable, edges,
                          graph.live, graph.removed, graph.routed)


def subgraph_specs(graphs: Sequence[StageGraphInfo]) -> List[dict]:
    """Fixed ``custom`` specs of the graphs pruned at 0, each kept edge
    weighted ``1 / in-degree`` (the mean of a node's inputs, as the
    ``random`` wiring weighs them)."""
    specs = []
    for graph in graphs:
        kept_edges, kept = prune_graph(graph.num_nodes, graph.edges)
        edges = [(i, j) for i, j, _ in kept_edges]
        indegree = {j: sum(1 for _, b in edges if b == j) for _, j in edges}
        spec = dict(
            type='custom',
            edges=edges,
            weights=[1.0 / indegree[j] for _, j in edges],
            learnable=False)
        removed = [k for k in range(1, graph.num_nodes - 1) if not kept[k]]
        if removed:
            spec['removed'] = removed
        specs.append(spec)
    return specs
