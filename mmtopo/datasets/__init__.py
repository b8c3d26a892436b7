"""Small data sets the demo, tests and experiments generate locally."""
from pathlib import Path

DATASETS = ('digits', 'digits_3way', 'toy_coco', 'toy_coco_hard')


def ensure_dataset(name: str, root) -> Path:
    """Write data set ``name`` under ``root`` unless it is already there
    (for the toy COCO sets, the splits that are missing); returns
    ``root``.

    ``digits_3way`` is the digits with a held-out ``test`` split taken
    from ``train``; a two-way digits folder is refused rather than given a
    test split, since its ``train`` already holds those images."""
    root = Path(root)
    if name == 'digits':
        if not (root / 'val').exists():
            from .digits import export_digits
            export_digits(root)
    elif name == 'digits_3way':
        if not (root / 'test').exists():
            if (root / 'train').exists():
                raise ValueError(
                    f'{root}: a digits folder without a test split (its '
                    'train holds the images a test split would take); '
                    'give digits_3way a new folder')
            from .digits import export_digits
            export_digits(root, test_split=True)
    elif name in ('toy_coco', 'toy_coco_hard'):
        from .toy_coco import SHAPE_SETS, make_toy_coco
        make_toy_coco(root, missing_only=True, shapes=SHAPE_SETS[name])
    else:
        raise ValueError(f'data set must be one of {list(DATASETS)}, got '
                         f'{name!r}')
    return root
