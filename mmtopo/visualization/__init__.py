"""Learned topologies for people: an adjacency table for logs and a picture
(one panel per stage) for files and the runner's visualizer backends."""
from .draw import draw_topology, figure_to_rgb
from .gates import GateRecorder, draw_gates, gate_statistics
from .text import format_topology

__all__ = [
    'GateRecorder', 'draw_gates', 'draw_topology', 'figure_to_rgb',
    'format_topology', 'gate_statistics'
]
