import json
import re

import numpy as np
import pytest
from PIL import Image

from mmtopo.datasets import ensure_dataset
from mmtopo.datasets.toy_coco import CLASSES, make_toy_coco

SMALL = dict(num_train=3, num_val=2, num_test=4, size=32)


def pixels(root, split):
    return [np.asarray(Image.open(p))
            for p in sorted((root / split).iterdir())]


def test_three_splits_each_from_its_own_seed(tmp_path):
    root = make_toy_coco(tmp_path / 'a', **SMALL)
    for split, count in (('train', 3), ('val', 2), ('test', 4)):
        ann = json.loads((root / 'annotations' / f'{split}.json').read_text())
        assert len(ann['images']) == count == len(pixels(root, split))
        assert [c['name'] for c in ann['categories']] == list(CLASSES)
        assert {a['image_id'] for a in ann['annotations']} <= {
            i['id'] for i in ann['images']}
    # the held-out images are not the validation images
    val, test = pixels(root, 'val'), pixels(root, 'test')
    assert not any(np.array_equal(v, t) for v in val for t in test)
    # a split does not depend on the sizes of the others
    other = make_toy_coco(tmp_path / 'b', num_train=1, num_val=5, num_test=2,
                          size=32)
    for a, b in zip(test, pixels(other, 'test')):
        assert np.array_equal(a, b)
    assert np.array_equal(val[1], pixels(other, 'val')[1])


def test_ensure_dataset_adds_only_the_missing_test_split(tmp_path):
    """A set written before the test split existed keeps its train and val
    files byte for byte; only test is added."""
    root = make_toy_coco(tmp_path / 'old', **SMALL)
    ann = root / 'annotations'
    (ann / 'test.json').unlink()
    for p in (root / 'test').iterdir():
        p.unlink()
    before = {s: (ann / f'{s}.json').read_bytes() for s in ('train', 'val')}
    ensure_dataset('toy_coco', root)
    for split, content in before.items():
        assert (ann / f'{split}.json').read_bytes() == content, split
    test = json.loads((ann / 'test.json').read_text())
    assert len(test['images']) == 200  # the default size of a new split
    # a complete set is left alone
    stamp = (ann / 'test.json').stat().st_mtime_ns
    ensure_dataset('toy_coco', root)
    assert (ann / 'test.json').stat().st_mtime_ns == stamp


def test_ensure_dataset_names_an_unknown_set(tmp_path):
    with pytest.raises(ValueError, match=re.escape(
            "one of ['digits', 'digits_3way', 'toy_coco'], got 'coco'")):
        ensure_dataset('coco', tmp_path)
