"""Argument parsing and validation shared by all layers.

Every error names the argument, says what was expected and what was received:
`ValueError("... Expected ... Received: name=value")`.
"""

import math
import numbers
import warnings

import numpy as np

RANGE_KINDS = ("symmetric", "multiplicative", "nonnegative")
# How resamplers read outside the input, and how they interpolate.
FILL_MODES = ("constant", "nearest")
INTERPOLATIONS = ("linear", "nearest")
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def parse_range(value, name, kind="symmetric", min_value=None, max_value=None):
    """Parse a range argument into a `(low, high)` tuple of floats.

    A number `x` means `(-x, x)` (`kind="symmetric"`), `(1 - x, 1 + x)`
    (`kind="multiplicative"`) or `(0, x)` (`kind="nonnegative"`); a pair
    `(low, high)` is taken as it is. `min_value`/`max_value` bound both ends.
    """
    if kind not in RANGE_KINDS:
        raise ValueError(f"Unknown range kind {kind!r}; expected one of {RANGE_KINDS}.")
    if is_number(value):
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
        and all(is_number(v) for v in value)
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
    return is_number(value) or (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(is_number(v) for v in value)
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
    if not is_number(value) or not 0 <= value <= 1:
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


def is_integer(value):
    """True for an integer that is not a bool (Python or NumPy)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value):
    """True for a real number that is not a bool (Python or NumPy)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_bool(value, name):
    """A bool (Python or NumPy)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"`{name}` must be True or False. Received: {name}={value!r}")
    return bool(value)


def check_number(value, name, min_value=None, max_value=None, allow_none=False):
    """A finite real number (not a bool) in `[min_value, max_value]`, as a float."""
    if value is None and allow_none:
        return None
    if not is_number(value) or not np.isfinite(value):
        raise ValueError(
            f"`{name}` must be a finite number. Received: {name}={value!r}"
        )
    if min_value is not None and value < min_value:
        raise ValueError(f"`{name}` must be >= {min_value}. Received: {name}={value!r}")
    if max_value is not None and value > max_value:
        raise ValueError(f"`{name}` must be <= {max_value}. Received: {name}={value!r}")
    return float(value)


def _bounds_text(min_value, max_value):
    if min_value is not None and max_value is not None:
        return f" in [{min_value}, {max_value}]"
    if min_value is not None:
        return f" >= {min_value}"
    if max_value is not None:
        return f" <= {max_value}"
    return ""


def check_int_list(value, name, min_value=None, max_value=None, received=None):
    """A list, tuple or 1-D array of integers (not bools), as a list of ints.

    `min_value`/`max_value` bound every entry. `received` is what the error
    shows as the received value (the argument as the user gave it, when
    `value` was taken out of it); defaults to `value`.
    """
    shown = value if received is None else received
    if isinstance(value, np.ndarray) and value.ndim == 1:
        value = value.tolist()
    if (
        not isinstance(value, (list, tuple))
        or not all(is_integer(v) for v in value)
        or (min_value is not None and any(v < min_value for v in value))
        or (max_value is not None and any(v > max_value for v in value))
    ):
        raise ValueError(
            f"`{name}` must be a list of integers{_bounds_text(min_value, max_value)}. "
            f"Received: {name}={shown!r}"
        )
    return [int(v) for v in value]


def check_per_axis(
    value, name, ndim=None, min_value=None, max_value=None, allow_none=False
):
    """A number, or a list of numbers one per spatial axis, as a tuple of floats.

    Every entry is finite and in `[min_value, max_value]`. With `ndim` a single
    number is repeated `ndim` times and a list must have `ndim` entries;
    without it (in a constructor, before the rank is known) the tuple has one
    entry for a single number: `broadcast_per_axis` expands it later.
    """
    if value is None and allow_none:
        return None
    values = [value] if is_number(value) else value
    if (
        not isinstance(values, (tuple, list))
        or not values
        or not all(is_number(v) and np.isfinite(v) for v in values)
        or (min_value is not None and any(v < min_value for v in values))
        or (max_value is not None and any(v > max_value for v in values))
    ):
        raise ValueError(
            f"`{name}` must be a finite number{_bounds_text(min_value, max_value)} "
            f"or a list of such numbers, one per spatial axis. "
            f"Received: {name}={value!r}"
        )
    values = tuple(float(v) for v in values)
    return values if ndim is None else broadcast_per_axis(values, ndim, name)


def broadcast_per_axis(values, ndim, name):
    """Repeat a one-entry tuple `ndim` times; check the length of a longer one."""
    values = tuple(values)
    if len(values) == 1:
        return values * ndim
    if len(values) != ndim:
        raise ValueError(
            f"`{name}` must have one entry per spatial axis ({ndim}). "
            f"Received: {name}={values!r}"
        )
    return values


def _is_grid_entry(value):
    if is_integer(value):
        return value >= 2
    return is_number(value) and 0 < value <= 1


def check_grid_shape(value, name):
    """The control grid of a smooth random field.

    An integer >= 2 (control points per axis), a float in (0, 1] (a fraction
    of the spatial shape, at least 2 points per axis), or a list of those, one
    per spatial axis. Returns an int, a float or a tuple of those.
    """
    if isinstance(value, (tuple, list)):
        if value and all(_is_grid_entry(v) for v in value):
            return tuple(int(v) if is_integer(v) else float(v) for v in value)
    elif _is_grid_entry(value):
        return int(value) if is_integer(value) else float(value)
    raise ValueError(
        f"`{name}` must be an integer >= 2 (control points per axis), a float in "
        f"(0, 1] (a fraction of the spatial shape), or a list of those, one per "
        f"spatial axis. Received: {name}={value!r}"
    )


def resolve_grid_shape(value, spatial_shape, name):
    """Control points per axis of a `check_grid_shape` value for a spatial shape.

    A fraction `f` of an axis of length `n` gives `max(2, ceil(f * n))` points.
    """
    value = check_grid_shape(value, name)
    ndim = len(spatial_shape)
    entries = value if isinstance(value, tuple) else (value,) * ndim
    if len(entries) != ndim:
        raise ValueError(
            f"`{name}` must have one entry per spatial axis ({ndim}). "
            f"Received: {name}={value!r}"
        )
    return tuple(
        v if is_integer(v) else max(2, math.ceil(v * n))
        for v, n in zip(entries, spatial_shape, strict=True)
    )


def renamed_argument(kwargs, old_name, new_name, value, default):
    """The value of an argument renamed from `old_name` to `new_name`.

    For a constructor that keeps `old_name` as a deprecated keyword alias:
    pops `old_name` from its `**kwargs` and, when it was given, warns with a
    `DeprecationWarning` naming `new_name` and returns its value (an error
    when `new_name` was given too, i.e. `value` is not the `default` object);
    otherwise returns `value`.
    """
    if old_name not in kwargs:
        return value
    old_value = kwargs.pop(old_name)
    if value is not default:
        raise ValueError(
            f"`{old_name}` is a deprecated name of `{new_name}`: pass only "
            f"`{new_name}`. Received: {new_name}={value!r}, "
            f"{old_name}={old_value!r}"
        )
    warnings.warn(
        f"`{old_name}` is deprecated and will be removed in the next release; "
        f"use `{new_name}` instead.",
        DeprecationWarning,
        stacklevel=3,
    )
    return old_value


def check_percentiles(percentiles):
    """None, or `(low, high)` percentiles with 0 <= low < high <= 100."""
    if percentiles is None:
        return None
    try:
        low, high = (float(p) for p in percentiles)
    except (TypeError, ValueError):
        low, high = np.nan, np.nan
    if not 0 <= low < high <= 100:
        raise ValueError(
            "Expected `percentiles` to be None or (low, high) with "
            f"0 <= low < high <= 100. Received: percentiles={percentiles!r}"
        )
    return low, high
