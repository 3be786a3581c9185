"""Tests for the shared validation vocabulary: each error names the argument."""

import warnings

import numpy as np
import pytest

from synthlayers import validation as v


def _raises(name, value):
    """`pytest.raises` matching "`name` must ..." and "Received: name=..."."""
    return pytest.raises(ValueError, match=rf"`{name}`(.|\n)*Received: {name}=")


@pytest.mark.parametrize(
    "value, kind, expected",
    [
        (2, "symmetric", (-2.0, 2.0)),
        (0.2, "multiplicative", (0.8, 1.2)),
        (3, "nonnegative", (0.0, 3.0)),
        ((1, 4), "symmetric", (1.0, 4.0)),
        ([0.5, 0.5], "multiplicative", (0.5, 0.5)),
    ],
)
def test_parse_range(value, kind, expected):
    assert v.parse_range(value, "x", kind) == pytest.approx(expected)


@pytest.mark.parametrize(
    "value, bounds",
    [
        (-1, {}),
        ((2, 1), {}),
        ((0, float("inf")), {}),
        ("a", {}),
        (True, {}),
        ((1, 2, 3), {}),
        (2, {"min_value": 0.0}),
        (2, {"max_value": 1.0}),
    ],
)
def test_parse_range_errors_name_the_argument(value, bounds):
    with _raises("my_range", ""):
        v.parse_range(value, "my_range", **bounds)


def test_parse_axis_ranges():
    assert v.parse_axis_ranges(1, "x", count=3) == [(-1.0, 1.0)] * 3
    assert v.parse_axis_ranges((1, 2), "x") == [(1.0, 2.0)]
    assert v.parse_axis_ranges([1, (0, 2)], "x") == [(-1.0, 1.0), (0.0, 2.0)]
    with _raises(r"x\[1\]", ""):
        v.parse_axis_ranges([1, -2, 3], "x")
    with _raises("x", ""):
        v.parse_axis_ranges([1, 2, 3], "x", count=2)


def test_check_probability():
    assert v.check_probability(1) == 1.0
    assert isinstance(v.check_probability(np.float32(0.5), "p"), float)
    for bad in (-0.1, 1.5, True, "0.5", None):
        with _raises("my_probability", ""):
            v.check_probability(bad, "my_probability")
    with _raises("probability", ""):
        v.check_probability(2)


def test_check_choice():
    assert v.check_choice("nearest", "fill_mode", v.FILL_MODES) == "nearest"
    with _raises("fill_mode", ""):
        v.check_choice("reflect", "fill_mode", v.FILL_MODES)
    with _raises("interpolation", ""):
        v.check_choice("cubic", "interpolation", v.INTERPOLATIONS)


def test_constants():
    assert v.FILL_MODES == ("constant", "nearest")
    assert v.INTERPOLATIONS == ("linear", "nearest")


def test_check_int():
    assert v.check_int(np.int64(3), "n", min_value=0) == 3
    assert type(v.check_int(np.int64(3), "n")) is int
    for bad in (True, 2.0, "2", None):
        with _raises("num_labels", ""):
            v.check_int(bad, "num_labels")
    with _raises("num_labels", ""):
        v.check_int(0, "num_labels", min_value=1)


def test_check_number():
    assert v.check_number(np.float32(2.5), "x", min_value=0) == 2.5
    assert v.check_number(None, "x", allow_none=True) is None
    for bad in (True, "1", np.nan, np.inf, None, -1, 11):
        with _raises("sigma", ""):
            v.check_number(bad, "sigma", min_value=0, max_value=10)


def test_check_bool():
    assert v.check_bool(np.bool_(True), "flag") is True
    for bad in (1, "yes", None):
        with _raises("flag", ""):
            v.check_bool(bad, "flag")


def test_check_int_list():
    assert v.check_int_list((1, np.int32(2)), "labels") == [1, 2]
    assert v.check_int_list(np.array([3, 0]), "labels", min_value=0) == [3, 0]
    assert v.check_int_list([], "labels") == []
    for bad in ([1, 2.0], [True], 3, "12", [[1]], [-1], [256]):
        with _raises("labels", ""):
            v.check_int_list(bad, "labels", min_value=0, max_value=255)


def test_check_int_list_shows_what_the_user_gave():
    table = {1: 2.5}
    with pytest.raises(ValueError, match=r"Received: labels=\{1: 2.5\}"):
        v.check_int_list(list(table.values()), "labels", received=table)


def test_check_per_axis():
    assert v.check_per_axis(2, "spacing") == (2.0,)
    assert v.check_per_axis(2, "spacing", ndim=3) == (2.0, 2.0, 2.0)
    assert v.check_per_axis([1, 2], "spacing", ndim=2, min_value=1) == (1.0, 2.0)
    assert v.check_per_axis(None, "spacing", allow_none=True) is None
    for bad in (None, [], [1, "a"], [np.nan], 0.5, [1, 20], True):
        with _raises("spacing", ""):
            v.check_per_axis(bad, "spacing", min_value=1, max_value=10)
    with _raises("spacing", ""):
        v.check_per_axis([1, 2], "spacing", ndim=3)


def test_broadcast_per_axis():
    assert v.broadcast_per_axis((2.0,), 3, "x") == (2.0, 2.0, 2.0)
    assert v.broadcast_per_axis([1.0, 2.0], 2, "x") == (1.0, 2.0)
    with _raises("thickness", ""):
        v.broadcast_per_axis((1.0, 2.0), 3, "thickness")


@pytest.mark.parametrize(
    "value, expected",
    [
        (2, 2),
        (np.int64(8), 8),
        (0.04, 0.04),
        (1.0, 1.0),
        ([4, 0.5, 3], (4, 0.5, 3)),
        ((2, 2), (2, 2)),
    ],
)
def test_check_grid_shape(value, expected):
    result = v.check_grid_shape(value, "grid_shape")
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    "value", [1, 0, -3, 0.0, 1.5, 2.0, True, [], [4, 1], "4", None]
)
def test_check_grid_shape_errors_name_the_argument(value):
    with _raises("warp_grid_shape", ""):
        v.check_grid_shape(value, "warp_grid_shape")


def test_resolve_grid_shape():
    # A fraction f of n points gives max(2, ceil(f * n)) control points.
    assert v.resolve_grid_shape(0.04, (160, 10), "g") == (7, 2)
    assert v.resolve_grid_shape(5, (32, 32, 32), "g") == (5, 5, 5)
    assert v.resolve_grid_shape((3, 0.5), (32, 9), "g") == (3, 5)
    with _raises("grid_shape", ""):
        v.resolve_grid_shape((3, 3), (8, 8, 8), "grid_shape")


def test_check_axes():
    assert v.check_axes(1, "axes", 3) == (1,)
    assert v.check_axes([0, 2], "axes", 3) == (0, 2)
    for bad in ([], [0, 0], [3], [True], 1.0):
        with pytest.raises(ValueError, match="`slice_axes`.*Received: slice_axes="):
            v.check_axes(bad, "slice_axes", 3)


def test_check_shape():
    assert v.check_shape([4, 5], "output_shape") == (4, 5)
    assert v.check_shape(4, "output_shape", ndim=3) == (4, 4, 4)
    assert v.check_shape(None, "output_shape", allow_none=True) is None
    for bad in (None, [], [0, 4], [4.0, 4], 4):
        with _raises("output_shape", ""):
            v.check_shape(bad, "output_shape")
    with _raises("output_shape", ""):
        v.check_shape([4, 4], "output_shape", ndim=3)


DEFAULT = 0.04


def test_renamed_argument_without_the_old_name():
    kwargs = {"name": "layer"}
    assert v.renamed_argument(kwargs, "svf_shape", "grid_shape", 8, DEFAULT) == 8
    assert kwargs == {"name": "layer"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        v.renamed_argument({}, "svf_shape", "grid_shape", DEFAULT, DEFAULT)


def test_renamed_argument_warns_and_pops_the_old_name():
    kwargs = {"svf_shape": 8, "name": "layer"}
    with pytest.warns(DeprecationWarning, match="`svf_shape`.*use `grid_shape`"):
        value = v.renamed_argument(kwargs, "svf_shape", "grid_shape", DEFAULT, DEFAULT)
    assert value == 8
    assert kwargs == {"name": "layer"}


def test_renamed_argument_both_names_is_an_error():
    with pytest.raises(
        ValueError, match="pass only `grid_shape`.*Received: grid_shape=0.05"
    ):
        v.renamed_argument({"svf_shape": 8}, "svf_shape", "grid_shape", 0.05, DEFAULT)
