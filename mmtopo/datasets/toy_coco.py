"""Small, seeded COCO-format detection sets of coloured shapes.

``toy_coco``: three classes (square, disk, triangle) with boxes and polygon
masks, apart from each other on a noisy background. ``toy_coco_hard``
(:data:`HARD`): eight classes, some of them alike (a disk and a ring, a
square and a diamond, a triangle and a star), smaller objects that may
overlap, clutter that belongs to no class, and a textured background, so
that a small detector is far from saturating it. Both have ``train``,
``val`` and ``test`` splits, each drawn from its own seed. Settings are
chosen on ``val``; ``test`` is held out for the numbers reported after that
choice. Used by ``make demo``, the end-to-end tests and the experiments, so
that the stock mmdet pipelines (``CocoDataset``, ``CocoMetric`` via
pycocotools) run on real files with no download.

    python -m mmtopo.datasets.toy_coco data/toy_coco
    python -m mmtopo.datasets.toy_coco data/toy_coco_hard --set toy_coco_hard
"""
import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Tuple

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ('square', 'disk', 'triangle')
HARD_CLASSES = ('square', 'disk', 'triangle', 'diamond', 'ring', 'star',
                'cross', 'hexagon')


def _regular(cx: float,
             cy: float,
             r: float,
             corners: int,
             phase: float = 0.0) -> list:
    return [(cx + r * math.cos(phase + a), cy + r * math.sin(phase + a))
            for a in np.linspace(0, 2 * math.pi, corners, endpoint=False)]


def _polygon(kind: str, cx: float, cy: float, r: float) -> List[float]:
    if kind == 'square':
        pts = [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r),
               (cx - r, cy + r)]
    elif kind in ('disk', 'ring'):  # a ring's hole is drawn on top
        pts = _regular(cx, cy, r, 24)
    elif kind == 'triangle':
        pts = [(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    elif kind == 'diamond':
        pts = _regular(cx, cy, r, 4, math.pi / 2)
    elif kind == 'hexagon':
        pts = _regular(cx, cy, r, 6)
    elif kind == 'star':
        outer = _regular(cx, cy, r, 5, -math.pi / 2)
        inner = _regular(cx, cy, 0.45 * r, 5, -math.pi / 2 + math.pi / 5)
        pts = [p for pair in zip(outer, inner) for p in pair]
    elif kind == 'cross':
        t = r / 3
        pts = [(cx - t, cy - r), (cx + t, cy - r), (cx + t, cy - t),
               (cx + r, cy - t), (cx + r, cy + t), (cx + t, cy + t),
               (cx + t, cy + r), (cx - t, cy + r), (cx - t, cy + t),
               (cx - r, cy + t), (cx - r, cy - t), (cx - t, cy - t)]
    else:
        raise ValueError(f'unknown shape {kind!r}')
    return [float(v) for p in pts for v in p]


def _draw_image(rng: np.random.Generator, size: int,
                max_objects: int) -> Tuple[Image.Image, list]:
    background = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
    img = Image.fromarray(background)
    draw = ImageDraw.Draw(img)
    objects, placed = [], []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        r = float(rng.uniform(size * 0.08, size * 0.2))
        cx, cy = rng.uniform(r + 1, size - r - 1, 2)
        if any(math.hypot(cx - x, cy - y) < r + q for x, y, q in placed):
            continue  # keep objects apart: boxes stay unambiguous
        placed.append((cx, cy, r))
        label = int(rng.integers(len(CLASSES)))
        poly = _polygon(CLASSES[label], cx, cy, r)
        colour = tuple(int(c) for c in rng.integers(120, 256, 3))
        draw.polygon(poly, fill=colour)
        xs, ys = poly[0::2], poly[1::2]
        x0, y0 = max(min(xs), 0), max(min(ys), 0)
        x1, y1 = min(max(xs), size), min(max(ys), size)
        objects.append(
            dict(
                label=label,
                bbox=[x0, y0, x1 - x0, y1 - y0],
                segmentation=[poly]))
    return img, objects


def _textured_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Noise over stripes and soft blobs of random colours."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    angle, period = rng.uniform(0, math.pi), rng.uniform(6, 24)
    stripes = 0.5 + 0.5 * np.sin(
        (xx * math.cos(angle) + yy * math.sin(angle)) * 2 * math.pi / period)
    base = rng.uniform(10, 70, 3) + rng.uniform(10, 50, 3) * stripes[..., None]
    for _ in range(3):
        bx, by = rng.uniform(0, size, 2)
        spread = rng.uniform(size / 8, size / 3)
        blob = np.exp(-((xx - bx)**2 + (yy - by)**2) / (2 * spread**2))
        base = base + rng.uniform(-40, 60, 3) * blob[..., None]
    base = base + rng.normal(0, 20, (size, size, 3))
    return np.clip(base, 0, 255).astype(np.uint8)


def _draw_hard_image(rng: np.random.Generator, size: int,
                     max_objects: int) -> Tuple[Image.Image, list]:
    """:data:`HARD`'s image: small shapes of eight classes (radius
    3.5-9% of the image) that may overlap (a later one occludes an earlier
    one's pixels; boxes and masks are of the whole shape), clutter of no
    class (strokes, specks and irregular blobs of a shape's size), and a
    noisy textured background. Two objects overlap at most partly (their
    centres are at least half their summed radii apart), so what is left
    of the earlier one still shows its shape."""
    img = Image.fromarray(_textured_background(rng, size))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(4, 10))):  # clutter: no class
        x0, y0, x1, y1 = (float(v) for v in rng.uniform(0, size, 4))
        colour = tuple(int(c) for c in rng.integers(60, 256, 3))
        kind = rng.random()
        if kind < 0.35:
            draw.line([(x0, y0), (x1, y1)],
                      fill=colour,
                      width=int(rng.integers(1, 4)))
        elif kind < 0.65:
            r = float(rng.uniform(size * 0.02, size * 0.05))
            draw.ellipse([x0 - r, y0 - 0.4 * r, x0 + r, y0 + 0.4 * r],
                         fill=colour)
        else:  # an irregular blob of shape-like size
            r = float(rng.uniform(size * 0.03, size * 0.08))
            corners = int(rng.integers(6, 10))
            angles = np.sort(rng.uniform(0, 2 * math.pi, corners))
            radii = rng.uniform(0.25 * r, r, corners)
            draw.polygon([(x0 + q * math.cos(a), y0 + q * math.sin(a))
                          for a, q in zip(angles, radii)],
                         fill=colour)
    objects, placed = [], []
    for _ in range(int(rng.integers(2, max_objects + 1))):
        r = float(rng.uniform(size * 0.035, size * 0.09))
        cx, cy = rng.uniform(r + 1, size - r - 1, 2)
        if any(
                math.hypot(cx - x, cy - y) < 0.5 * (r + q)
                for x, y, q in placed):
            continue
        placed.append((cx, cy, r))
        label = int(rng.integers(len(HARD_CLASSES)))
        kind = HARD_CLASSES[label]
        poly = _polygon(kind, cx, cy, r)
        colour = tuple(int(c) for c in rng.integers(90, 256, 3))
        draw.polygon(poly, fill=colour)
        if kind == 'ring':
            hole = [(cx - 0.5 * r, cy - 0.5 * r), (cx + 0.5 * r, cy + 0.5 * r)]
            draw.ellipse(
                hole, fill=tuple(int(c) for c in rng.integers(0, 80, 3)))
        xs, ys = poly[0::2], poly[1::2]
        x0, y0 = max(min(xs), 0), max(min(ys), 0)
        x1, y1 = min(max(xs), size), min(max(ys), size)
        objects.append(
            dict(
                label=label,
                bbox=[x0, y0, x1 - x0, y1 - y0],
                segmentation=[poly]))
    return img, objects


@dataclass(frozen=True)
class ShapeSet:
    """One generated set: its classes, how an image is drawn, and the
    default split sizes."""
    classes: Tuple[str, ...]
    draw: Callable
    max_objects: int
    num_train: int
    num_val: int
    num_test: int


EASY = ShapeSet(CLASSES, _draw_image, 4, 200, 50, 200)
HARD = ShapeSet(HARD_CLASSES, _draw_hard_image, 14, 200, 100, 200)
SHAPE_SETS = dict(toy_coco=EASY, toy_coco_hard=HARD)


def _area(poly: List[float]) -> float:
    xs, ys = np.array(poly[0::2]), np.array(poly[1::2])
    return float(0.5 *
                 abs(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1))))


def make_split(root: Path,
               split: str,
               num_images: int,
               size: int,
               seed: int,
               shapes: ShapeSet = EASY) -> Path:
    """Write ``root/<split>/*.png`` and ``root/annotations/<split>.json``."""
    rng = np.random.default_rng(seed)
    (root / split).mkdir(parents=True, exist_ok=True)
    (root / 'annotations').mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for image_id in range(1, num_images + 1):
        img, objects = shapes.draw(rng, size, shapes.max_objects)
        name = f'{image_id:06d}.png'
        img.save(root / split / name)
        images.append(
            dict(id=image_id, file_name=name, width=size, height=size))
        for obj in objects:
            annotations.append(
                dict(
                    id=len(annotations) + 1,
                    image_id=image_id,
                    category_id=obj['label'] + 1,
                    bbox=obj['bbox'],
                    area=_area(obj['segmentation'][0]),
                    segmentation=obj['segmentation'],
                    iscrowd=0))
    categories = [dict(id=i + 1, name=n) for i, n in enumerate(shapes.classes)]
    path = root / 'annotations' / f'{split}.json'
    path.write_text(
        json.dumps(
            dict(
                images=images, annotations=annotations,
                categories=categories)))
    return path


# each split's seed offset: a split's images do not depend on the others'
SPLIT_SEEDS = dict(train=0, val=1, test=2)


def make_toy_coco(root,
                  num_train: Optional[int] = None,
                  num_val: Optional[int] = None,
                  num_test: Optional[int] = None,
                  size: int = 128,
                  seed: int = 0,
                  missing_only: bool = False,
                  shapes: ShapeSet = EASY) -> Path:
    """Generate the three splits of ``shapes`` (default sizes: its own)
    under ``root`` (split ``s`` seeded ``seed + SPLIT_SEEDS[s]``); returns
    ``root``. With ``missing_only`` a split whose annotation file exists is
    kept as it is, so that a set from before the test split gains one
    without changing its train or val."""
    root = Path(root)
    sizes = dict(train=num_train, val=num_val, test=num_test)
    defaults = dict(
        train=shapes.num_train, val=shapes.num_val, test=shapes.num_test)
    for split, num_images in sizes.items():
        if missing_only and (root / 'annotations' / f'{split}.json').exists():
            continue
        make_split(root, split,
                   defaults[split] if num_images is None else num_images, size,
                   seed + SPLIT_SEEDS[split], shapes)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('root', help='output folder, e.g. data/toy_coco')
    parser.add_argument(
        '--set',
        choices=sorted(SHAPE_SETS),
        default='toy_coco',
        help='which set (default: '
        'toy_coco)')
    parser.add_argument(
        '--train', type=int, help='images (default: the '
        "set's)")
    parser.add_argument('--val', type=int)
    parser.add_argument('--test', type=int)
    parser.add_argument('--size', type=int, default=128)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    make_toy_coco(
        args.root,
        args.train,
        args.val,
        args.test,
        args.size,
        args.seed,
        shapes=SHAPE_SETS[args.set])
    print(f'{args.set} written to {args.root}')


if __name__ == '__main__':
    main()
