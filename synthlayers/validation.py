"""Argument parsing and validation shared by all layers.

Every error names the argument, says what was expected and what was received:
`ValueError("... Expected ... Received: name=value")`.
"""

import numbers

import numpy as np

RANGE_KINDS = ("symmetric", "multiplicative", "nonnegative")


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def parse_range(value, name, kind="symmetric", min_value=None, max_value=None):
    """Parse a range argument into a `(low, high)` tuple of floats.

    A number `x` means `(-x, x)` (`kind="symmetric"`), `(1 - x, 1 + x)`
    (`kind="multiplicative"`) or `(0, x)` (`kind="nonnegative"`); a pair
    `(low, high)` is taken as it is. `min_value`/`max_value` bound both ends.
    """
    if kind not in RANGE_KINDS:
        raise ValueError(f"Unknown range kind {kind!r}; expected one of {RANGE_KINDS}.")
    if _is_number(value):
        x = float(value)
        if x < 0:
            raise ValueError(
                f"`{name}` as a single number must be >= 0. Received: {name}={value}"
            )
        low, high = {"symmetric": (-x, x), "multiplicative": (1 - x, 1 + x)}.get(
            kind, (0.0, x)
        )
    elif (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(_is_number(v) for v in value)
    ):
        low, high = float(value[0]), float(value[1])
    else:
        raise ValueError(
            f"`{name}` must be a number or a (min, max) pair of numbers. "
            f"Received: {name}={value!r}"
        )
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError(f"`{name}` must be finite. Received: {name}={value!r}")
    if low > high:
        raise ValueError(f"`{name}` must have min <= max. Received: {name}={value!r}")
    if min_value is not None and low < min_value:
        raise ValueError(
            f"`{name}` must lie in [{min_value}, ...]; its range is ({low}, {high}). "
            f"Received: {name}={value!r}"
        )
    if max_value is not None and high > max_value:
        raise ValueError(
            f"`{name}` must lie in [..., {max_value}]; its range is ({low}, {high}). "
            f"Received: {name}={value!r}"
        )
    return low, high


def _is_single_range(value):
    return _is_number(value) or (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(_is_number(v) for v in value)
    )


def parse_axis_ranges(value, name, count=None, kind="symmetric", **bounds):
    """Parse a range per axis (or per parameter) into a list of `(min, max)`.

    `value` is one range for all (a number or a `(min, max)` pair: two plain
    numbers always mean `(min, max)`), or a list of ranges, one each. With
    `count=None` only the entries are checked (for constructors, before the
    number of spatial axes is known) and the list has the given length.
    """
    if _is_single_range(value):
        return [parse_range(value, name, kind, **bounds)] * (count or 1)
    if isinstance(value, (tuple, list)) and value and count in (None, len(value)):
        return [
            parse_range(v, f"{name}[{i}]", kind, **bounds) for i, v in enumerate(value)
        ]
    expected = "a list of ranges" if count is None else f"a list of {count} ranges"
    raise ValueError(
        f"`{name}` must be one range or {expected} (one per axis or parameter). "
        f"Received: {name}={value!r}"
    )


def check_probability(value, name="probability"):
    """A number in [0, 1]."""
    if not _is_number(value) or not 0 <= value <= 1:
        raise ValueError(
            f"`{name}` must be a number in [0, 1]. Received: {name}={value!r}"
        )
    return float(value)


def check_choice(value, name, choices):
    """One of a fixed set of strings."""
    if value not in choices:
        raise ValueError(
            f"`{name}` must be one of {choices}. Received: {name}={value!r}"
        )
    return value


def check_int(value, name, min_value=None):
    """An integer (not a bool), optionally bounded below."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise ValueError(f"`{name}` must be an integer. Received: {name}={value!r}")
    if min_value is not None and value < min_value:
        raise ValueError(f"`{name}` must be >= {min_value}. Received: {name}={value!r}")
    return int(value)


def check_axes(value, name, ndim):
    """An axis in [0, ndim), or a non-empty tuple of distinct such axes: a tuple."""
    axes = value if isinstance(value, (tuple, list)) else (value,)
    if (
        not axes
        or not all(
            isinstance(a, numbers.Integral)
            and not isinstance(a, bool)
            and 0 <= a < ndim
            for a in axes
        )
        or len(set(axes)) != len(axes)
    ):
        raise ValueError(
            f"Expected `{name}` to be an axis in [0, {ndim}) or a tuple of distinct "
            f"such axes. Received: {name}={value!r}"
        )
    return tuple(int(a) for a in axes)


def check_shape(value, name, ndim=None, allow_none=False):
    """A tuple of positive ints (length `ndim` when given), or None."""
    if value is None and allow_none:
        return None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value,) * (ndim or 1) if ndim else None
    if (
        not isinstance(value, (tuple, list))
        or not value
        or not all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0
            for v in value
        )
    ):
        raise ValueError(
            f"`{name}` must be a tuple of positive integers. Received: {name}={value!r}"
        )
    if ndim is not None and len(value) != ndim:
        raise ValueError(
            f"`{name}` must have {ndim} entries, one per spatial axis. "
            f"Received: {name}={tuple(value)!r}"
        )
    return tuple(int(v) for v in value)
