"""scikit-learn's handwritten digits (1797 real 8x8 images, shipped with the
package) as an mmpretrain ``CustomDataset`` folder tree with a fixed split.

    python -m mmtopo.datasets.digits data/digits

writes ``data/digits/{train,val}/<digit>/<index>.png`` (1438 / 359 images).
"""
import argparse
from pathlib import Path

import numpy as np
from PIL import Image

VAL_FRACTION = 0.2
SPLIT_SEED = 0


def export_digits(root) -> Path:
    from sklearn.datasets import load_digits
    digits = load_digits()
    order = np.random.default_rng(SPLIT_SEED).permutation(len(digits.target))
    num_val = int(round(len(order) * VAL_FRACTION))
    splits = dict(val=order[:num_val], train=order[num_val:])
    root = Path(root)
    for split, indices in splits.items():
        for idx in indices:
            label = int(digits.target[idx])
            folder = root / split / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            # 0..16 grey levels -> 0..255, written as RGB like photos
            pixels = (digits.images[idx] * (255 / 16)).astype(np.uint8)
            Image.fromarray(pixels).convert('RGB').save(folder /
                                                        f'{idx:04d}.png')
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('root', nargs='?', default='data/digits')
    export_digits(parser.parse_args().root)


if __name__ == '__main__':
    main()
