"""Text rendering of learned topologies, for logs and the terminal."""
from typing import Sequence

from ..models.graph import StageGraphInfo


def count_blocks(n: int) -> str:
    """``'1 block'``, ``'3 blocks'``."""
    return f'{n} block' + ('' if n == 1 else 's')


def format_topology(graphs: Sequence[StageGraphInfo], digits: int = 2) -> str:
    """One adjacency table per stage: row ``i``, column ``j`` holds the
    weight of edge ``i -> j``; ``.`` marks an edge of weight exactly zero
    (pruned) and blank cells are not in the graph. Node ``n`` is the
    stage output."""
    width = digits + 4
    lines = []
    for graph in graphs:
        n = graph.num_nodes
        weights = {(i, j): w for i, j, w in graph.edges}
        kind = 'learnable' if graph.learnable else 'fixed'
        lines.append(f'{graph.name}: {count_blocks(n - 1)}, '
                     f'{graph.active_edges}/{len(weights)} edges active '
                     f'({kind})')
        lines.append(' ' * 6 +
                     ''.join(f'{("out" if j == n - 1 else j):>{width}}'
                             for j in range(1, n)))
        for i in range(n - 1):
            cells = []
            for j in range(1, n):
                w = weights.get((i, j))
                cells.append(' ' *
                             width if w is None else f'{".":>{width}}' if w ==
                             0 else f'{w:>{width}.{digits}f}')
            lines.append(f'{i:>6}' + ''.join(cells))
    return '\n'.join(lines)
