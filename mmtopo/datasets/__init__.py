"""Small data sets the demo, tests and experiments generate locally."""
from pathlib import Path


def ensure_dataset(name: str, root) -> Path:
    """Write data set ``name`` (``'digits'`` or ``'toy_coco'``) under
    ``root`` unless it is already there (for ``toy_coco``, the splits that
    are missing); returns ``root``."""
    root = Path(root)
    if name == 'digits':
        if not (root / 'val').exists():
            from .digits import export_digits
            export_digits(root)
    elif name == 'toy_coco':
        from .toy_coco import make_toy_coco
        make_toy_coco(root, missing_only=True)
    else:
        raise ValueError(f"data set must be 'digits' or 'toy_coco', got "
                         f'{name!r}')
    return root
