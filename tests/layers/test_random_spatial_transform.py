import numpy as np
import pytest

from synthlayers.layers import RandomSpatialTransform
from synthlayers.layers import SpatialTransformer
from tests.helpers import check_layer
from tests.helpers import make_image
from tests.helpers import make_label_map
from tests.helpers import to_numpy

SHAPES = {2: (24, 20), 3: (14, 12, 16)}
SMALLER = {2: (16, 15), 3: (10, 9, 8)}
LARGER = {2: (30, 26), 3: (18, 15, 20)}
FULL = dict(
    translation=2,
    rotation=15,
    scaling=0.1,
    shear=0.02,
    deformation_std=2.0,
    svf_shape=4,
)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("sizes", [SMALLER, LARGER])
def test_contract(ndim, sizes, tmp_path):
    shape = SHAPES[ndim]
    data = {"images": make_image(shape), "segmentation_masks": make_label_map(shape)}
    check_layer(
        RandomSpatialTransform,
        dict(FULL, output_shape=sizes[ndim], placement="random"),
        data,
        identity_when_not_training=False,
        expected_spatial_shape=sizes[ndim],
        tmp_path=tmp_path,
    )


@pytest.mark.parametrize("ndim", [2, 3])
def test_contract_same_shape_with_transform_outputs(ndim, tmp_path):
    shape = SHAPES[ndim]
    data = {"images": make_image(shape), "segmentation_masks": make_label_map(shape)}
    check_layer(
        RandomSpatialTransform,
        dict(FULL, return_transform=True),
        data,
        identity_when_not_training=False,
        tmp_path=tmp_path,
    )


@pytest.mark.parametrize("ndim", [2, 3])
def test_not_training_is_a_centred_crop_or_pad(ndim):
    shape = SHAPES[ndim]
    labels = make_label_map(shape, labels=[0, 4, 7])
    for out_shape in (SMALLER[ndim], LARGER[ndim]):
        layer = RandomSpatialTransform(output_shape=out_shape, **FULL)
        out = to_numpy(layer(labels, training=False))
        expected = np.zeros((2, *out_shape, 1), "int32")
        src, dst = [], []
        for n_in, n_out in zip(shape, out_shape):
            offset = (n_in - n_out) // 2
            if offset >= 0:
                src.append(slice(offset, offset + n_out))
                dst.append(slice(None))
            else:
                src.append(slice(None))
                dst.append(slice(-offset, -offset + n_in))
        expected[(slice(None), *dst)] = labels[(slice(None), *src)]
        np.testing.assert_array_equal(out, expected)


def test_random_placement_gives_integer_crops_covering_all_offsets():
    image = np.arange(20 * 18, dtype="float32").reshape(1, 20, 18, 1)
    images = np.repeat(image, 300, axis=0)
    out = to_numpy(
        RandomSpatialTransform(output_shape=(16, 16), placement="random", seed=0)(
            images
        )
    )
    offsets = set()
    for sample in out[..., 0]:
        i, j = divmod(int(sample[0, 0]), 18)
        np.testing.assert_array_equal(sample, image[0, i : i + 16, j : j + 16, 0])
        offsets.add((i, j))
    assert offsets == {(i, j) for i in range(5) for j in range(3)}


@pytest.mark.parametrize("ndim", [2, 3])
def test_displacement_output_reproduces_the_warp(ndim):
    shape = SHAPES[ndim]
    data = {"images": make_image(shape), "segmentation_masks": make_label_map(shape)}
    layer = RandomSpatialTransform(
        output_shape=SMALLER[ndim], return_transform=True, seed=5, **FULL
    )
    out = layer(data)
    again = SpatialTransformer()([data["images"], out["displacement"]])
    np.testing.assert_allclose(to_numpy(again), to_numpy(out["images"]), atol=1e-5)
    labels = SpatialTransformer(interpolation="nearest")(
        [data["segmentation_masks"], out["displacement"]]
    )
    np.testing.assert_array_equal(to_numpy(labels), to_numpy(out["segmentation_masks"]))


def test_bad_output_shape():
    with pytest.raises(
        ValueError, match=r"output_shape.*Received: output_shape=\(8, 8, 8\)"
    ):
        RandomSpatialTransform(output_shape=(8, 8, 8))(
            np.zeros((1, 8, 8, 1), "float32")
        )
    with pytest.raises(
        ValueError, match=r"output_shape.*Received: output_shape=\(8, -1\)"
    ):
        RandomSpatialTransform(output_shape=(8, -1))
    with pytest.raises(ValueError, match="placement.*Received: placement='corner'"):
        RandomSpatialTransform(placement="corner")
