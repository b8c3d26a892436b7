"""Results over seeds as table cells."""
from statistics import mean, pstdev
from typing import Iterable, Optional, Tuple


def mean_std(values: Iterable[Optional[float]], digits: int = 3) -> str:
    """``mean ± std`` (population std) of the values that are not None,
    or ``-`` when none is."""
    values = [v for v in values if v is not None]
    if not values:
        return '-'
    return f'{mean(values):.{digits}f} ± {pstdev(values):.{digits}f}'


def per_seed(values: Iterable[Optional[float]], digits: int = 3) -> str:
    """The values one by one, ``-`` for a missing one."""
    return ', '.join('-' if v is None else f'{v:.{digits}f}' for v in values)


def spread(values, digits: int = 3) -> Tuple[str, str]:
    """``(mean ± std, per seed)``, or dashes when a value is missing."""
    values = list(values)
    if not values or None in values:
        return '-', '-'
    return mean_std(values, digits), per_seed(values, digits)
