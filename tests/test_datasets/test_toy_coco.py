import json
import re

import numpy as np
import pytest
from PIL import Image

from mmtopo.datasets import ensure_dataset
from mmtopo.datasets.toy_coco import CLASSES, HARD, HARD_CLASSES, make_toy_coco

SMALL = dict(num_train=3, num_val=2, num_test=4, size=32)


def pixels(root, split):
    return [
        np.asarray(Image.open(p)) for p in sorted((root / split).iterdir())
    ]


def test_three_splits_each_from_its_own_seed(tmp_path):
    root = make_toy_coco(tmp_path / 'a', **SMALL)
    for split, count in (('train', 3), ('val', 2), ('test', 4)):
        ann = json.loads((root / 'annotations' / f'{split}.json').read_text())
        assert len(ann['images']) == count == len(pixels(root, split))
        assert [c['name'] for c in ann['categories']] == list(CLASSES)
        assert {a['image_id']
                for a in ann['annotations']
                } <= {i['id']
                      for i in ann['images']}
    # the held-out images are not the validation images
    val, test = pixels(root, 'val'), pixels(root, 'test')
    assert not any(np.array_equal(v, t) for v in val for t in test)
    # a split does not depend on the sizes of the others
    other = make_toy_coco(
        tmp_path / 'b', num_train=1, num_val=5, num_test=2, size=32)
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
    with pytest.raises(
            ValueError,
            match=re.escape("one of ['digits', 'digits_3way', 'toy_coco', "
                            "'toy_coco_hard'], got 'coco'")):
        ensure_dataset('coco', tmp_path)


def test_the_easy_set_is_the_one_earlier_releases_generated(tmp_path):
    """Pinned against the first image of a split: the harder set's code
    does not move a pixel or a box of the easy one."""
    root = make_toy_coco(tmp_path, num_train=1, num_val=1, num_test=1)
    ann = json.loads((root / 'annotations' / 'train.json').read_text())
    assert [a['category_id'] for a in ann['annotations']] == [1, 2]
    assert [round(v, 3) for v in ann['annotations'][0]['bbox']
            ] == [2.804, 45.447, 41.865, 41.865]
    assert int(pixels(root, 'train')[0].sum()) == 2362559


def test_the_hard_set_has_eight_classes_small_overlapping_objects(tmp_path):
    """Eight classes; more objects per image than the easy set, smaller
    (radius 3.5-9% of the image against 8-20%), some overlapping; every box
    inside the image; each split from its own seed."""
    root = make_toy_coco(
        tmp_path, num_train=40, num_val=2, num_test=2, shapes=HARD)
    ann = json.loads((root / 'annotations' / 'train.json').read_text())
    assert [c['name'] for c in ann['categories']] == list(HARD_CLASSES)
    assert {a['category_id'] for a in ann['annotations']} == set(range(1, 9))
    per_image = len(ann['annotations']) / len(ann['images'])
    assert per_image > 3.5
    sides = [a['bbox'][2] for a in ann['annotations']]
    assert max(sides) <= 0.18 * 128 + 1e-6 and min(sides) >= 0.06 * 128
    assert all(0 <= a['bbox'][0] and a['bbox'][0] + a['bbox'][2] <= 128
               for a in ann['annotations'])
    boxes = {}
    for a in ann['annotations']:
        boxes.setdefault(a['image_id'], []).append(a['bbox'])

    def overlap(a, b):
        return (min(a[0] + a[2], b[0] + b[2]) > max(a[0], b[0])
                and min(a[1] + a[3], b[1] + b[3]) > max(a[1], b[1]))

    assert any(
        overlap(a, b) for bs in boxes.values() for k, a in enumerate(bs)
        for b in bs[k + 1:])
    val, test = pixels(root, 'val'), pixels(root, 'test')
    assert not any(np.array_equal(v, t) for v in val for t in test)
