"""Checks of user-facing arguments, where they enter: type, range,
finiteness. Every error names the field, the value given and what is
allowed; nothing is coerced (a number given as a string, a bool given as
an int, or an int given as a bool is an error)."""
import math
from pathlib import Path
from typing import Any, Optional, Sequence


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_bool(field: str, value: Any) -> bool:
    """``value`` must be True or False."""
    if not isinstance(value, bool):
        raise ValueError(f'{field} must be True or False, got {value!r}')
    return value


def check_int(field: str,
              value: Any,
              min_value: Optional[int] = None,
              max_value: Optional[int] = None) -> int:
    """``value`` must be an int (not a bool, not a float) within the
    bounds given (inclusive)."""
    if not (isinstance(value, int) and not isinstance(value, bool)) or (
            min_value is not None
            and value < min_value) or (max_value is not None
                                       and value > max_value):
        raise ValueError(f'{field} must be {_int_range(min_value, max_value)}'
                         f', got {value!r}')
    return value


def _int_range(low, high) -> str:
    if low is not None and high is not None:
        return f'an integer in [{low}, {high}]'
    if low is not None:
        return f'an integer >= {low}'
    if high is not None:
        return f'an integer <= {high}'
    return 'an integer'


def check_number(field: str,
                 value: Any,
                 low: Optional[float] = None,
                 high: Optional[float] = None,
                 low_open: bool = False,
                 high_open: bool = False) -> float:
    """``value`` must be a finite int or float (not a bool, not a string)
    in the interval given (closed unless ``*_open``); returns it as a
    float."""
    ok = _number(value) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        raise ValueError(f'{field} must be a finite number'
                         f'{_interval(low, high, low_open, high_open)}, got '
                         f'{value!r}')
    return float(value)


def _interval(low, high, low_open, high_open) -> str:
    if low is not None and high is not None:
        return (f' in {"(" if low_open else "["}{low}, {high}'
                f'{")" if high_open else "]"}')
    if low is not None:
        return f' {">" if low_open else ">="} {low}'
    if high is not None:
        return f' {"<" if high_open else "<="} {high}'
    return ''


def check_choice(field: str, value: Any, choices: Sequence) -> Any:
    """``value`` must be one of ``choices``."""
    if not any(value == c and type(value) is type(c) for c in choices):
        raise ValueError(f'{field} must be one of {list(choices)}, got '
                         f'{value!r}')
    return value


def check_shape(field: str, value: Any, length: int) -> tuple:
    """``value`` must be a list or tuple of ``length`` positive ints."""
    if not (isinstance(value, (list, tuple)) and len(value) == length and all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0
            for v in value)):
        raise ValueError(f'{field} must be {length} positive integers, got '
                         f'{value!r}')
    return tuple(value)


def check_output_file(field: str,
                      path: str,
                      suffixes: Sequence[str] = ('.png', )) -> str:
    """``path`` must name a file to write: not an existing folder, with one
    of ``suffixes``, in a folder that exists."""
    target = Path(path)
    if target.is_dir():
        example = str(target / ('out' + suffixes[0]))
        raise ValueError(f'{field} {path!r} is a folder; give the file to '
                         f'write, e.g. {example!r}')
    if target.suffix.lower() not in suffixes:
        raise ValueError(f'{field} {path!r} must end in one of '
                         f'{list(suffixes)}')
    if not target.parent.is_dir():
        raise ValueError(f'{field} {path!r}: its folder {str(target.parent)!r}'
                         ' does not exist')
    return path


def check_output_dir(field: str, path: str) -> str:
    """``path`` must be a folder to write into (made if missing), not an
    existing file."""
    if Path(path).exists() and not Path(path).is_dir():
        raise ValueError(f'{field} {path!r} is a file; give a folder to '
                         'write into')
    return path
