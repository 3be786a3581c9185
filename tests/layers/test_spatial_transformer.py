import keras
import numpy as np
import pytest
from scipy import ndimage

from synthlayers.layers import IntegrateVelocity
from synthlayers.layers import SpatialTransformer
from tests.helpers import make_image
from tests.helpers import make_label_map
from tests.helpers import to_numpy

SHAPES = {2: (12, 10), 3: (8, 9, 10)}


def _round_trip(model, inputs, tmp_path):
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(
        loaded.predict(inputs, verbose=0), model.predict(inputs, verbose=0), atol=1e-6
    )


def _jit():
    return keras.backend.backend() in ("tensorflow", "jax")


@pytest.mark.parametrize("ndim", [2, 3])
def test_displacement_matches_scipy(ndim, rng):
    shape = SHAPES[ndim]
    image = make_image(shape, channels=2, batch=2)
    displacement = rng.normal(0, 2, (2, *shape, ndim)).astype("float32")
    out = to_numpy(SpatialTransformer()([image, displacement]))
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    for b in range(2):
        coords = np.moveaxis(grid + displacement[b], -1, 0).astype("float64")
        for c in range(2):
            expected = ndimage.map_coordinates(
                image[b, ..., c].astype("float64"),
                coords,
                order=1,
                mode="grid-constant",
            )
            np.testing.assert_allclose(out[b, ..., c], expected, atol=1e-4)


@pytest.mark.parametrize("ndim", [2, 3])
def test_matrix_matches_scipy_and_output_shape(ndim, rng):
    shape = SHAPES[ndim]
    image = make_image(shape, batch=1)
    matrix = np.eye(ndim + 1, dtype="float32")
    matrix[:ndim, :ndim] += rng.normal(0, 0.1, (ndim, ndim))
    matrix[:ndim, ndim] = rng.normal(0, 1, ndim)
    out_shape = tuple(n + 3 for n in shape)
    out = to_numpy(SpatialTransformer(output_shape=out_shape)([image, matrix[None]]))
    expected = ndimage.affine_transform(
        image[0, ..., 0].astype("float64"),
        matrix[:ndim, :ndim],
        matrix[:ndim, ndim],
        output_shape=out_shape,
        order=1,
        mode="grid-constant",
    )
    np.testing.assert_allclose(out[0, ..., 0], expected, atol=1e-4)
    # (batch, ndim, ndim + 1) matrices mean the same.
    short = to_numpy(
        SpatialTransformer(output_shape=out_shape)([image, matrix[None, :ndim]])
    )
    np.testing.assert_array_equal(short, out)


@pytest.mark.parametrize("ndim", [2, 3])
def test_nearest_keeps_labels(ndim, rng):
    shape = SHAPES[ndim]
    labels = make_label_map(shape, labels=[0, 2, 41])
    displacement = rng.normal(0, 3, (2, *shape, ndim)).astype("float32")
    out = to_numpy(SpatialTransformer(interpolation="nearest")([labels, displacement]))
    assert out.dtype == np.int32 and set(np.unique(out)) <= {0, 2, 41}
    zero = to_numpy(
        SpatialTransformer(interpolation="nearest")([labels, 0 * displacement])
    )
    np.testing.assert_array_equal(zero, labels)


@pytest.mark.parametrize("ndim", [2, 3])
def test_spatial_transformer_model_and_saving(ndim, rng, tmp_path):
    shape = SHAPES[ndim]
    image_in = keras.Input((*[None] * ndim, 1))
    field_in = keras.Input((*[None] * ndim, ndim))
    out = SpatialTransformer(fill_mode="nearest")([image_in, field_in])
    assert tuple(out.shape) == (None, *[None] * ndim, 1)
    model = keras.Model([image_in, field_in], out)
    model.compile(jit_compile=_jit())
    inputs = [make_image(shape), rng.normal(0, 2, (2, *shape, ndim)).astype("float32")]
    direct = to_numpy(SpatialTransformer(fill_mode="nearest")(inputs))
    np.testing.assert_allclose(model.predict(inputs, verbose=0), direct, atol=1e-5)
    _round_trip(model, inputs, tmp_path)
    layer = SpatialTransformer(interpolation="nearest", output_shape=(4,) * ndim)
    assert (
        SpatialTransformer.from_config(layer.get_config()).get_config()
        == layer.get_config()
    )


@pytest.mark.parametrize("ndim", [2, 3])
def test_integrate_velocity_layer(ndim):
    shape = SHAPES[ndim]
    velocity = np.zeros((1, *shape, ndim), "float32")
    velocity[..., 0] = 1.25
    out = to_numpy(IntegrateVelocity(steps=6)(velocity))
    np.testing.assert_allclose(
        out, velocity, atol=1e-5
    )  # constant field: a translation
    assert IntegrateVelocity.from_config(IntegrateVelocity(3).get_config()).steps == 3


@pytest.mark.slow
@pytest.mark.parametrize("ndim", [2, 3])
def test_integrate_velocity_compiled_model_and_saving(ndim, tmp_path):
    shape = SHAPES[ndim]
    inputs = keras.Input((*[None] * ndim, ndim))
    model = keras.Model(inputs, IntegrateVelocity(steps=4)(inputs))
    model.compile(jit_compile=_jit())
    smooth = ndimage.gaussian_filter(
        np.random.default_rng(0).normal(0, 30, (1, *shape, ndim)), (0, *[2] * ndim, 0)
    ).astype("float32")
    _round_trip(model, smooth, tmp_path)


def test_bad_inputs():
    image = np.zeros((1, 8, 8, 1), "float32")
    with pytest.raises(
        ValueError, match=r"transform.*Received: transform.shape=\(1, 8, 8, 3\)"
    ):
        SpatialTransformer()([image, np.zeros((1, 8, 8, 3), "float32")])
    with pytest.raises(ValueError, match=r"transform.shape=\(1, 4, 4\)"):
        SpatialTransformer()([image, np.zeros((1, 4, 4), "float32")])
    with pytest.raises(ValueError, match="interpolation='nearest'.*int32"):
        SpatialTransformer()([image.astype("int32"), np.zeros((1, 8, 8, 2), "float32")])
    with pytest.raises(
        ValueError, match="interpolation.*Received: interpolation='cubic'"
    ):
        SpatialTransformer(interpolation="cubic")
    with pytest.raises(ValueError, match=r"velocity.shape=\(1, 8, 8, 3\)"):
        IntegrateVelocity()(np.zeros((1, 8, 8, 3), "float32"))
    with pytest.raises(ValueError, match="steps.*Received: steps=-2"):
        IntegrateVelocity(steps=-2)
