"""The digits folders: the three-way split holds out a test split that no
image of train or val is in, and a two-way folder is not turned into one."""
import re

import pytest

from mmtopo.datasets import ensure_dataset


def images(root, split) -> set:
    return {
        p.relative_to(root / split)
        for p in (root / split).glob('*/*.png')
    }


def test_digits_3way_holds_out_a_test_split_from_train(tmp_path):
    two = ensure_dataset('digits', tmp_path / 'digits')
    three = ensure_dataset('digits_3way', tmp_path / 'digits_3way')
    train, val, test = (images(three, s) for s in ('train', 'val', 'test'))
    assert (len(train), len(val), len(test)) == (1079, 359, 359)
    assert not (train & val or train & test or val & test)
    # val is the same images either way (settings chosen on it carry
    # over); test comes out of the two-way train
    assert val == images(two, 'val')
    assert train | test == images(two, 'train')
    # a finished folder is left alone
    stamp = next((three / 'test').glob('*/*.png')).stat().st_mtime_ns
    ensure_dataset('digits_3way', three)
    assert next((three / 'test').glob('*/*.png')).stat().st_mtime_ns == stamp


def test_a_two_way_digits_folder_is_refused_as_digits_3way(tmp_path):
    (tmp_path / 'train' / '0').mkdir(parents=True)
    with pytest.raises(
            ValueError,
            match=re.escape(
                f'{tmp_path}: a digits folder without a test split')):
        ensure_dataset('digits_3way', tmp_path)
    assert not (tmp_path / 'test').exists()
