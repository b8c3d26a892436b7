"""scikit-learn's handwritten digits (1797 real 8x8 images, shipped with the
package) as an mmpretrain ``CustomDataset`` folder tree with a fixed split.

    python -m mmtopo.datasets.digits data/digits

writes ``data/digits/{train,val}/<digit>/<index>.png`` (1438 / 359 images).
With ``--test-split`` a further 359 images are held out of ``train`` as
``test`` (1079 / 359 / 359), for choosing settings on ``val`` and reporting
on images no setting was chosen on; ``val`` is the same either way.
"""
import argparse
from pathlib import Path

import numpy as np
from PIL import Image

VAL_FRACTION = 0.2
SPLIT_SEED = 0


def export_digits(root, test_split: bool = False) -> Path:
    from sklearn.datasets import load_digits
    digits = load_digits()
    order = np.random.default_rng(SPLIT_SEED).permutation(len(digits.target))
    num_val = int(round(len(order) * VAL_FRACTION))
    splits = dict(val=order[:num_val], train=order[num_val:])
    if test_split:
        splits.update(
            test=order[num_val:2 * num_val], train=order[2 * num_val:])
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
    parser.add_argument(
        '--test-split',
        action='store_true',
        help='also hold out a test split (from train)')
    args = parser.parse_args()
    export_digits(args.root, args.test_split)


if __name__ == '__main__':
    main()
