"""Small data sets the demo, tests and experiments generate locally."""
from pathlib import Path

DATASETS = ('digits', 'digits_3way', 'toy_coco')


def ensure_dataset(name: str, root) -> Path:
    """Write data set ``name`` under ``root`` unless it is already there
    (for ``toy_coco``, the splits that are missing); returns ``root``.

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
    elif name == 'toy_coco':
        from .toy_coco import make_toy_coco
        make_toy_coco(root, missing_only=True)
    else:
        raise ValueError(f'data set must be one of {list(DATASETS)}, got '
                         f'{name!r}')
    return root
