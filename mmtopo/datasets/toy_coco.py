"""A small, seeded COCO-format detection set of coloured shapes.

Three classes (square, disk, triangle) with boxes and polygon masks, drawn on
a noisy background; ``train``, ``val`` and ``test`` splits, each drawn from
its own seed. Settings are chosen on ``val``; ``test`` is held out for the
numbers reported after that choice. Used by ``make demo`` and the end-to-end
tests, so that the stock mmdet pipelines (``CocoDataset``, ``CocoMetric`` via
pycocotools) run on real files with no download.

    python -m mmtopo.datasets.toy_coco data/toy_coco --train 200 --val 50 \
        --test 200
"""
import argparse
import json
import math
from pathlib import Path
from typing import List, Tuple

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ('square', 'disk', 'triangle')


def _polygon(kind: str, cx: float, cy: float, r: float) -> List[float]:
    if kind == 'square':
        pts = [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r),
               (cx - r, cy + r)]
    elif kind == 'disk':
        pts = [(cx + r * math.cos(a), cy + r * math.sin(a))
               for a in np.linspace(0, 2 * math.pi, 24, endpoint=False)]
    else:
        pts = [(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
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
        objects.append(dict(label=label, bbox=[x0, y0, x1 - x0, y1 - y0],
                            segmentation=[poly]))
    return img, objects


def _area(poly: List[float]) -> float:
    xs, ys = np.array(poly[0::2]), np.array(poly[1::2])
    return float(0.5 * abs(np.dot(xs, np.roll(ys, 1)) -
                           np.dot(ys, np.roll(xs, 1))))


def make_split(root: Path, split: str, num_images: int, size: int,
               seed: int, max_objects: int = 4) -> Path:
    """Write ``root/<split>/*.png`` and ``root/annotations/<split>.json``."""
    rng = np.random.default_rng(seed)
    (root / split).mkdir(parents=True, exist_ok=True)
    (root / 'annotations').mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for image_id in range(1, num_images + 1):
        img, objects = _draw_image(rng, size, max_objects)
        name = f'{image_id:06d}.png'
        img.save(root / split / name)
        images.append(dict(id=image_id, file_name=name, width=size,
                           height=size))
        for obj in objects:
            annotations.append(
                dict(id=len(annotations) + 1, image_id=image_id,
                     category_id=obj['label'] + 1, bbox=obj['bbox'],
                     area=_area(obj['segmentation'][0]),
                     segmentation=obj['segmentation'], iscrowd=0))
    categories = [dict(id=i + 1, name=n) for i, n in enumerate(CLASSES)]
    path = root / 'annotations' / f'{split}.json'
    path.write_text(json.dumps(dict(images=images, annotations=annotations,
                                    categories=categories)))
    return path


# each split's seed offset: a split's images do not depend on the others'
SPLIT_SEEDS = dict(train=0, val=1, test=2)


def make_toy_coco(root, num_train: int = 200, num_val: int = 50,
                  num_test: int = 200, size: int = 128, seed: int = 0,
                  missing_only: bool = False) -> Path:
    """Generate the three splits under ``root`` (split ``s`` seeded ``seed
    + SPLIT_SEEDS[s]``); returns ``root``. With ``missing_only`` a split
    whose annotation file exists is kept as it is, so that a set from
    before the test split gains one without changing its train or val."""
    root = Path(root)
    sizes = dict(train=num_train, val=num_val, test=num_test)
    for split, num_images in sizes.items():
        if missing_only and (root / 'annotations' / f'{split}.json').exists():
            continue
        make_split(root, split, num_images, size, seed + SPLIT_SEEDS[split])
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('root', help='output folder, e.g. data/toy_coco')
    parser.add_argument('--train', type=int, default=200)
    parser.add_argument('--val', type=int, default=50)
    parser.add_argument('--test', type=int, default=200)
    parser.add_argument('--size', type=int, default=128)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    make_toy_coco(args.root, args.train, args.val, args.test, args.size,
                  args.seed)
    print(f'toy COCO set written to {args.root}')


if __name__ == '__main__':
    main()
