"""A stage's weighted DAG as data: what a backbone reports of each stage
(:class:`StageGraphInfo`) and the questions asked of such a graph (which
nodes compute, which reach the output, what pruning keeps, which path is
the widest, which edges every path needs).

Edges are ``(i, j, weight)`` triples with ``i < j`` on nodes ``0 .. n``
(node 0 the stage's first block, node ``n`` its output).
"""
from dataclasses import dataclass
from typing import Dict, List, Tuple

Edge = Tuple[int, int]
WeightedEdge = Tuple[int, int, float]


@dataclass(frozen=True)
class StageGraphInfo:
    """The graph one stage of a topology backbone has now
    (``backbone.topology_graphs()``): for drawing, logging, costing and
    pruning.

    Attributes:
        name: the stage's attribute name in its backbone (``'layer1'``).
        num_nodes: blocks + 1 (the output node).
        learnable: whether its edge weights learn.
        edges: ``(i, j, weight)`` of every edge in its mask.
        live: which nodes compute (an active input, see :func:`live_nodes`).
        removed: the blocks a pruned graph does without.
        routed: the nodes with a router (dynamic wiring).
    """
    name: str
    num_nodes: int
    learnable: bool
    edges: Tuple[WeightedEdge, ...]
    live: Tuple[bool, ...]
    removed: Tuple[int, ...] = ()
    routed: Tuple[int, ...] = ()

    @property
    def active_edges(self) -> int:
        """Edges with a non-zero weight."""
        return sum(1 for _, _, w in self.edges if w != 0)


def live_nodes(num_nodes: int, edges) -> List[bool]:
    """Which nodes of a stage graph compute, from its ``(i, j, weight)``
    edges: node 0 always; node ``j`` when at least one in-edge is active,
    i.e. has a non-zero weight and a live source. A node with no active
    input is removed (see :meth:`StageGraph.live_nodes`)."""
    inputs: Dict[int, List[Tuple[int, float]]] = {}
    for i, j, w in edges:
        inputs.setdefault(j, []).append((i, w))
    live = [True]
    for j in range(1, num_nodes):
        live.append(any(live[i] and w != 0 for i, w in inputs.get(j, [])))
    return live


def reaching_nodes(num_nodes: int, edges) -> List[bool]:
    """Which nodes reach the output node through edges of non-zero
    weight (the output node itself does)."""
    outputs: Dict[int, List[Tuple[int, float]]] = {}
    for i, j, w in edges:
        outputs.setdefault(i, []).append((j, w))
    reach = [False] * (num_nodes - 1) + [True]
    for i in reversed(range(num_nodes - 1)):
        reach[i] = any(reach[j] and w != 0 for j, w in outputs.get(i, []))
    return reach


def prune_graph(num_nodes: int, edges, threshold: float = 0.0):
    """The graph a deployment keeps: ``(edges, kept)``, the ``(i, j, w)``
    edges with ``|w| > threshold`` between kept nodes, and which nodes are
    kept, i.e. have an active input (:func:`live_nodes`) and a path to the
    output (:func:`reaching_nodes`). The output node is kept only if the
    stage stays connected."""
    active = [(i, j, w) for i, j, w in edges if abs(w) > threshold]
    kept = [
        a and b for a, b in zip(
            live_nodes(num_nodes, active), reaching_nodes(num_nodes, active))
    ]
    return [(i, j, w) for i, j, w in active if kept[i] and kept[j]], kept


def widest_path_edges(num_nodes: int, edges) -> Tuple[float, List[Edge]]:
    """``(t, path)``: the largest ``t`` such that some path from node 0 to
    the output uses only edges with ``|w| >= t`` (pruning at any threshold
    below it keeps the stage connected), and the edges of such a path."""
    best = [float('inf')] + [0.0] * (num_nodes - 1)
    via: Dict[int, int] = {}
    for i, j, w in sorted(edges, key=lambda e: e[1]):
        width = min(best[i], abs(w))
        if width > best[j] or j not in via:
            best[j], via[j] = max(best[j], width), i
    path, node = [], num_nodes - 1
    while node in via and node != 0:
        path.append((via[node], node))
        node = via[node]
    return best[-1], path[::-1]


def bridge_edges(num_nodes: int, edges) -> List[Edge]:
    """The edges of non-zero weight that lie on every path from node 0 to
    the output: zeroing any one of them cuts the stage. Counted exactly,
    as the number of paths through an edge against all paths; none when
    the stage is already cut."""
    active = sorted(((i, j) for i, j, w in edges if w != 0),
                    key=lambda e: e[1])
    into = [1] + [0] * (num_nodes - 1)  # paths from node 0 to each node
    for i, j in active:
        into[j] += into[i]
    out_of = [0] * (num_nodes - 1) + [1]  # paths from each node onwards
    for i, j in reversed(active):
        out_of[i] += out_of[j]
    total = into[-1]
    return [(i, j) for i, j in active
            if total > 0 and into[i] * out_of[j] == total]


def widest_path(num_nodes: int, edges) -> float:
    """The width ``t`` of :func:`widest_path_edges`."""
    return widest_path_edges(num_nodes, edges)[0]
