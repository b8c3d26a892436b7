"""Topology specs: which edges a stage graph has and what they start at.

A stage of ``n`` blocks is a DAG on nodes ``0 .. n`` (``n`` is the output
node). An edge ``(i, j)`` always runs from a lower to a higher index, so every
edge set here is acyclic by construction. The topology types only decide the
edge mask, the initial weights and whether the weights are learnable; the
aggregation itself lives in :class:`mmtopo.models.layers.StageGraph`.
"""
import inspect
import logging
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.logging import print_log

from ..utils.validation import (check_bool, check_choice, check_int,
                                check_number)
from .graph import Edge, prune_graph


@dataclass
class StageTopology:
    """The graph of one stage: ``mask[i, j]`` is edge ``i -> j``.

    Both tensors are ``(num_nodes, num_nodes)`` with ``num_nodes = blocks + 1``
    and are zero on and below the diagonal.
    """
    mask: torch.Tensor
    weights: torch.Tensor
    learnable: bool
    # blocks a pruned graph does without: not built, not stored, no edges
    removed: Tuple[int, ...] = ()
    # dynamic wiring: the nodes with a router, the router's config and the
    # per-instance gate threshold (mmtopo.models.layers.dynamic)
    routed: Tuple[int, ...] = ()
    router: Optional[dict] = None
    threshold: float = 0.0
    # whether the graph may cut every path through the stage (its output
    # then constant zero): only when asked for, never by accident
    allow_cut: bool = False


def in_degree_weights(mask: torch.Tensor) -> torch.Tensor:
    """``1 / in-degree(j)`` on every edge into ``j`` (an average of inputs)."""
    indeg = mask.sum(0, keepdim=True).clamp(min=1)
    return mask.float() / indeg


def chain_mask(num_nodes: int) -> torch.Tensor:
    return torch.diag(torch.ones(num_nodes - 1, dtype=torch.bool), 1)


def complete_mask(num_nodes: int) -> torch.Tensor:
    return torch.ones(num_nodes, num_nodes, dtype=torch.bool).triu(1)


def check_connected(mask: torch.Tensor,
                    where: str,
                    removed: Sequence[int] = ()) -> None:
    """Every node but the first needs an input, every node but the last an
    output; otherwise a block would be fed nothing or computed for nothing.
    A ``removed`` node has no block and must have no edge at all."""
    last = mask.shape[0] - 1
    for k in removed:
        if mask[:, k].any() or mask[k].any():
            raise ValueError(f'{where}: node {k} is removed but has edges '
                             f'{_edges_at(mask, k)}')
    for j in range(1, last + 1):
        if j not in removed and not mask[:, j].any():
            raise ValueError(f'{where}: node {j} has no input edge '
                             f'(every node 1..{last} needs one, unless '
                             'listed in topology.removed)')
    for i in range(last):
        if i not in removed and not mask[i].any():
            raise ValueError(f'{where}: node {i} has no output edge '
                             f'(every node 0..{last - 1} needs one, unless '
                             'listed in topology.removed)')


def _edges_at(mask: torch.Tensor, k: int) -> List[Edge]:
    return [tuple(e) for e in mask.nonzero().tolist() if k in e]


# --- builders, one per topology type ---------------------------------------


def _residual(num_nodes: int, stage: int) -> StageTopology:
    mask = chain_mask(num_nodes)
    return StageTopology(mask, mask.float(), learnable=False)


def _complete(num_nodes: int, stage: int) -> StageTopology:
    mask = complete_mask(num_nodes)
    return StageTopology(mask, in_degree_weights(mask), learnable=False)


LEARNABLE_INITS = ('residual', 'uniform', 'ones')


def _learnable(num_nodes: int,
               stage: int,
               init: str = 'residual',
               allow_cut: bool = False) -> StageTopology:
    check_choice('topology.init', init, LEARNABLE_INITS)
    mask = complete_mask(num_nodes)
    if init == 'residual':
        weights = chain_mask(num_nodes).float()
    elif init == 'uniform':
        weights = in_degree_weights(mask)
    else:
        weights = mask.float()
    return StageTopology(
        mask,
        weights,
        learnable=True,
        allow_cut=check_bool('topology.allow_cut', allow_cut))


def _dynamic(num_nodes: int,
             stage: int,
             init: str = 'residual',
             threshold: float = 0.0,
             router: Optional[dict] = None,
             allow_cut: bool = False) -> StageTopology:
    """The learnable complete DAG with a router on every node that has
    more than one candidate input (instance-aware wiring)."""
    topo = _learnable(num_nodes, stage, init=init, allow_cut=allow_cut)
    _check_router(router, threshold, f'topology[{stage}] (dynamic)')
    topo.routed = tuple(
        j for j in range(num_nodes) if int(topo.mask[:, j].sum()) > 1)
    topo.router = dict(type='EdgeRouter') if router is None else dict(router)
    topo.threshold = float(threshold)
    return topo


def _check_router(router, threshold, where: str) -> None:
    if router is not None and not isinstance(router, dict):
        raise ValueError(f'{where}: topology.router must be a dict (the '
                         f'router config), got {router!r}')
    check_threshold(threshold, where)


def check_threshold(threshold,
                    where: str,
                    field: str = 'topology.threshold') -> None:
    """A gate threshold lies in ``[0, 1)``. The gates lie in (0, 2) and
    start at exactly 1 (the routers' last layer starts at zero), so a
    threshold of 1 or more would close every gate at the first step: every
    stage would output zeros and no router would learn to open it."""
    if not (isinstance(threshold, (int, float))
            and not isinstance(threshold, bool) and 0 <= threshold < 1):
        raise ValueError(f'{where}: {field} must be a number in [0, 1) '
                         '(every gate starts at 1; a threshold of 1 or more '
                         f'closes them all), got {threshold!r}')


RANDOM_GRAPHS = ('er', 'ws', 'ba')


def _check_probability(p: float) -> None:
    check_number('topology.p', p, low=0, high=1)


def _er_edges(n: int, rng: np.random.Generator, p: float) -> List[Edge]:
    """Erdos-Renyi: each pair independently with probability ``p``."""
    _check_probability(p)
    return [(i, j) for i in range(n) for j in range(i + 1, n)
            if rng.random() < p]


def _ws_edges(n: int, rng: np.random.Generator, k: int,
              p: float) -> List[Edge]:
    """Watts-Strogatz: a ring where each node meets its ``k`` nearest
    neighbours, each edge's far end rewired with probability ``p``."""
    _check_probability(p)
    if not (isinstance(k, int) and k >= 2 and k % 2 == 0 and k < n):
        raise ValueError(f'topology.k must be an even integer in [2, {n - 1}] '
                         f'for a stage of {n} nodes, got {k!r}')
    edges = {
        frozenset((i, (i + d) % n))
        for i in range(n)
        for d in range(1, k // 2 + 1)
    }
    for i in range(n):
        for d in range(1, k // 2 + 1):
            edge = frozenset((i, (i + d) % n))
            if edge in edges and rng.random() < p:
                free = [
                    v for v in range(n)
                    if v != i and frozenset((i, v)) not in edges
                ]
                if free:
                    edges.remove(edge)
                    edges.add(frozenset((i, int(rng.choice(free)))))
    return [tuple(sorted(e)) for e in edges]


def _ba_edges(n: int, rng: np.random.Generator, m: int) -> List[Edge]:
    """Barabasi-Albert: nodes join one by one, each linking to ``m`` existing
    nodes chosen with probability proportional to their degree."""
    if not (isinstance(m, int) and 1 <= m < n):
        raise ValueError(f'topology.m must be an integer in [1, {n - 1}] '
                         f'for a stage of {n} nodes, got {m!r}')
    degree = np.zeros(n)
    edges = []
    for new in range(m, n):
        old = np.arange(new)
        prob = degree[:new] + 1.0  # +1: the first nodes can be picked too
        targets = rng.choice(old, size=m, replace=False, p=prob / prob.sum())
        for t in targets:
            edges.append((int(t), new))
            degree[t] += 1
            degree[new] += 1
    return edges


def _spec_fields(builder: Callable, skip: int) -> List[str]:
    """The spec fields ``builder`` takes: its parameters after the first
    ``skip`` positional ones (which the graph code passes itself)."""
    params = list(inspect.signature(builder).parameters.values())[skip:]
    return [p.name for p in params if p.kind is not p.VAR_KEYWORD]


def _check_fields(given, accepted: Sequence[str], what: str) -> None:
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        raise ValueError(f'{what} got unknown field(s) {unknown}; it '
                         f'accepts {sorted(accepted)}')


RANDOM_SAMPLERS: Dict[str, Callable] = dict(
    er=_er_edges, ws=_ws_edges, ba=_ba_edges)


def _random(num_nodes: int,
            stage: int,
            graph: str = 'er',
            seed: int = 0,
            **graph_args) -> StageTopology:
    check_choice('topology.graph', graph, RANDOM_GRAPHS)
    check_int('topology.seed', seed, min_value=0)
    sampler = RANDOM_SAMPLERS[graph]
    _check_fields(
        graph_args, _spec_fields(sampler, 2),
        f"topology of type 'random' with graph={graph!r} (besides "
        "'graph' and 'seed')")
    missing = [f for f in _spec_fields(sampler, 2) if f not in graph_args]
    if missing:
        raise ValueError(f'topology of type {"random"!r} with graph='
                         f'{graph!r} needs the field(s) {missing}')
    # each stage draws its own graph, reproducibly from (seed, stage)
    rng = np.random.default_rng([seed, stage])
    edges = sampler(num_nodes, rng, **graph_args)
    mask = torch.zeros(num_nodes, num_nodes, dtype=torch.bool)
    for i, j in edges:
        mask[min(i, j), max(i, j)] = True
    # repair as RandWire does: inputs from the input node, outputs to the
    # output node
    last = num_nodes - 1
    for j in range(1, num_nodes):
        if not mask[:, j].any():
            mask[0, j] = True
    for i in range(last):
        if not mask[i].any():
            mask[i, last] = True
    return StageTopology(mask, in_degree_weights(mask), learnable=False)


def _custom(num_nodes: int,
            stage: int,
            edges: Sequence[Sequence[int]] = None,
            weights: Optional[Sequence[float]] = None,
            learnable: bool = False,
            removed: Sequence[int] = (),
            routed: Sequence[int] = (),
            router: Optional[dict] = None,
            threshold: float = 0.0,
            allow_cut: bool = False) -> StageTopology:
    where = f'topology[{stage}] (custom)'
    _check_router(router, threshold, where)
    check_bool(f'{where}: topology.learnable', learnable)
    check_bool(f'{where}: topology.allow_cut', allow_cut)
    for field, values in (('removed', removed), ('routed', routed)):
        if not isinstance(values, (list, tuple)):
            raise ValueError(f'{where}: topology.{field} must be a list of '
                             f'node indices, got {values!r}')
    if routed and router is None:
        raise ValueError(f'{where}: topology.routed lists {list(routed)} '
                         'but topology.router is not set')
    if edges is None or len(edges) == 0:
        raise ValueError(f'{where}: topology.edges must list the edges (i, j)')
    last = num_nodes - 1
    for k in removed:
        if not (isinstance(k, int) and 1 <= k < last):
            raise ValueError(f'{where}: topology.removed lists {k!r}, but '
                             f'only blocks 1..{last - 1} can be removed')
    if not isinstance(edges, (list, tuple)):
        raise ValueError(f'{where}: topology.edges must be a list of pairs '
                         f'(i, j), got {edges!r}')
    if weights is not None:
        if not isinstance(weights, (list, tuple)):
            raise ValueError(f'{where}: topology.weights must be a list of '
                             f'numbers, got {weights!r}')
        if len(weights) != len(edges):
            raise ValueError(f'{where}: topology.weights has {len(weights)} '
                             f'values for {len(edges)} edges')
        for k, w in enumerate(weights):
            check_number(
                f'{where}: topology.weights[{k}] (edge '
                f'{tuple(edges[k])})', w)
    mask = torch.zeros(num_nodes, num_nodes, dtype=torch.bool)
    values = torch.zeros(num_nodes, num_nodes)
    for k, edge in enumerate(edges):
        if not (isinstance(edge, (list, tuple)) and len(edge) == 2 and all(
                isinstance(v, int) and not isinstance(v, bool) for v in edge)):
            raise ValueError(f'{where}: edge {edge!r} is not a pair of node '
                             'indices (i, j)')
        i, j = edge
        if not (0 <= i <= last and 0 <= j <= last):
            raise ValueError(f'{where}: edge ({i}, {j}) is out of range: '
                             f'nodes are 0..{last}')
        if i >= j:
            raise ValueError(
                f'{where}: edge ({i}, {j}) does not run from a lower to a '
                'higher node: it would make the graph cyclic')
        if mask[i, j]:
            raise ValueError(f'{where}: edge ({i}, {j}) is listed twice')
        mask[i, j] = True
        if weights is not None:
            values[i, j] = float(weights[k])
    if weights is None:
        values = in_degree_weights(mask)
    for j in routed:
        if not (isinstance(j, int) and 1 <= j <= last and mask[:, j].any()):
            raise ValueError(f'{where}: topology.routed lists {j!r}, which '
                             'is not a node with an input edge')
    return StageTopology(
        mask,
        values,
        learnable=learnable,
        removed=tuple(sorted(set(removed))),
        routed=tuple(sorted(set(routed))),
        router=None if router is None else dict(router),
        threshold=float(threshold),
        allow_cut=allow_cut)


TOPOLOGY_BUILDERS: Dict[str, Callable[..., StageTopology]] = dict(
    residual=_residual,
    complete=_complete,
    learnable=_learnable,
    dynamic=_dynamic,
    random=_random,
    custom=_custom,
)


def build_stage_topology(spec: dict, num_blocks: int,
                         stage: int) -> StageTopology:
    """Build the graph of stage ``stage`` (0-based) with ``num_blocks`` blocks
    from a spec like ``dict(type='learnable', init='residual')``."""
    if not isinstance(spec, dict) or 'type' not in spec:
        raise ValueError(f'topology[{stage}] must be a dict with a "type" '
                         f'key, got {spec!r}')
    args = dict(spec)
    kind = args.pop('type')
    if kind not in TOPOLOGY_BUILDERS:
        raise KeyError(f'topology.type {kind!r} is unknown; choose from '
                       f'{sorted(TOPOLOGY_BUILDERS)}')
    builder = TOPOLOGY_BUILDERS[kind]
    if kind != 'random':  # random checks its fields per graph type
        _check_fields(args, _spec_fields(builder, 2),
                      f'topology[{stage}] of type {kind!r}')
    try:
        topo = builder(num_blocks + 1, stage, **args)
    except TypeError as err:
        raise ValueError(
            f'topology[{stage}] of type {kind!r}: {err}') from None
    check_connected(topo.mask, f'topology[{stage}] ({kind})', topo.removed)
    topo.weights = topo.weights * topo.mask
    check_not_cut(topo, f'topology[{stage}] ({kind})')
    if num_blocks == 1 and topo.learnable:
        # A single edge can only scale the stage output, which the next
        # norm undoes, so the sparsity step would shrink it towards zero
        # and cut the network: there is no connectivity to learn.
        print_log(
            f'topology[{stage}]: a stage of one block has a single '
            f'edge, 0 -> 1; it stays fixed at '
            f'{float(topo.weights[0, 1]):g} (not learnable)',
            logger='current',
            level=logging.INFO)
        topo.learnable = False
        topo.routed = ()  # nothing to route either
    return topo


def zero_edges(mask: torch.Tensor, weights: torch.Tensor) -> List[Edge]:
    """The edges of ``mask`` whose weight is exactly zero."""
    return [
        tuple(e) for e in (mask.bool() & (weights == 0)).nonzero().tolist()
    ]


def is_cut(mask: torch.Tensor, weights: torch.Tensor) -> bool:
    """Whether no path of non-zero edges leads from node 0 to the output
    node (the stage's output is then constant zero)."""
    n = mask.shape[0]
    edges = [(i, j, float(weights[i, j]))
             for i, j in mask.bool().nonzero().tolist()]
    return not prune_graph(n, edges)[1][-1]


def check_not_cut(topo: StageTopology, where: str) -> None:
    """A graph whose zero edges cut every path through the stage is an
    error, unless ``allow_cut`` asks for it."""
    if not topo.allow_cut and is_cut(topo.mask, topo.weights):
        zeros = zero_edges(topo.mask, topo.weights)
        raise ValueError(
            f'{where}: the zero-weight edges {zeros} cut every path from '
            'the stage input to its output, so the stage would output zeros '
            'and its edges get no gradient; give a non-zero weight on some '
            'path, or set allow_cut=True to build it so on purpose')


def build_topologies(topology, num_stages: int,
                     stage_blocks: Sequence[int]) -> List[StageTopology]:
    """One :class:`StageTopology` per stage from a dict (all stages) or a
    list of dicts (one per stage)."""
    if isinstance(topology, dict):
        specs = [topology] * num_stages
    elif isinstance(topology, (list, tuple)):
        specs = list(topology)
        if len(specs) != num_stages:
            raise ValueError(
                f'topology lists {len(specs)} stage specs but num_stages is '
                f'{num_stages}')
    else:
        raise ValueError('topology must be a dict or a list of dicts, got '
                         f'{topology!r}')
    return [
        build_stage_topology(spec, n, i)
        for i, (spec, n) in enumerate(zip(specs, stage_blocks))
    ]
