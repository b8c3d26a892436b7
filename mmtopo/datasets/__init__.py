"""Small data sets the demo, tests and experiments generate locally."""
from pathlib import Path


def ensure_dataset(name: str, root) -> Path:
    """Write data set ``name`` (``'digits'`` or ``'toy_coco'``) under
    ``root`` unless it is already there; returns ``root``."""
    root = Path(root)
    if name == 'digits':
        if not (root / 'val').exists():
            from .digits import export_digits
            export_digits(root)
    elif name == 'toy_coco':
        if not (root / 'annotations' / 'val.json').exists():
            from .toy_coco import make_toy_coco
            make_toy_coco(root)
    else:
        raise ValueError(f"data set must be 'digits' or 'toy_coco', got "
                         f'{name!r}')
    return root
