import json

import keras
import numpy as np
import pytest

from synthlayers.models import unet
from tests.helpers import make_image
from tests.helpers import to_numpy


def _json(config):
    """A config with tuples as lists, as it reads back from a file."""
    return json.loads(json.dumps(config))


def _conv_params(kernel, ndim, channels_in, channels_out):
    return kernel**ndim * channels_in * channels_out + channels_out


def _expected_params(ndim, channels, classes, levels, features, convs, kernel):
    """Parameter count of a U-Net without normalisation, level by level."""
    total, skips, current = 0, [], channels
    for level in range(levels):  # encoder
        for _ in range(convs):
            total += _conv_params(kernel, ndim, current, features[level])
            current = features[level]
        skips.append(current)
    for level in range(levels - 2, -1, -1):  # decoder: concat skip + upsampled
        current += skips[level]
        for _ in range(convs):
            total += _conv_params(kernel, ndim, current, features[level])
            current = features[level]
    return total + _conv_params(1, ndim, current, classes)


@pytest.mark.parametrize(
    "ndim, spatial, input_spatial",
    [
        (2, (32, 24), (32, 24)),
        (2, (16, 40), (None, None)),
        (3, (8, 16, 8), (None, 16, None)),
    ],
)
def test_output_shape_and_softmax(ndim, spatial, input_spatial):
    net = unet((*input_spatial, 2), num_classes=4, levels=3, features=4)
    assert net.output_shape == (None, *input_spatial, 4)
    images = make_image(spatial, channels=2, batch=2)
    out = to_numpy(net(images))
    assert out.shape == (2, *spatial, 4)
    assert np.all(out >= 0)
    np.testing.assert_allclose(out.sum(-1), 1.0, rtol=1e-5)


def test_none_spatial_dims_accept_several_sizes():
    net = unet((None, None, 1), num_classes=2, levels=2, features=2)
    for spatial in ((8, 8), (12, 6)):
        assert tuple(net(make_image(spatial, batch=1)).shape) == (1, *spatial, 2)


def test_parameter_count_hand_computed():
    # 2D, 1 channel in, 3 classes, 2 levels of 1 convolution with 2 and 4
    # features, kernel 3: encoder 3*3*1*2+2 = 20 and 3*3*2*4+4 = 76, decoder
    # on the concatenation (2 + 4 channels) 3*3*6*2+2 = 110, output 1x1
    # 2*3+3 = 9: 215.
    net = unet(
        (None, None, 1), num_classes=3, levels=2, features=2, convolutions_per_level=1,
        normalization=None,
    )  # fmt: skip
    assert net.count_params() == 215
    # Batch normalisation adds 4 values per channel (2 trainable) after each
    # level: 2 + 4 (encoder) + 2 (decoder) channels.
    net = unet(
        (None, None, 1), num_classes=3, levels=2, features=2, convolutions_per_level=1,
        normalization="batch",
    )  # fmt: skip
    assert net.count_params() == 215 + 4 * 8
    trainable = sum(int(np.prod(v.shape)) for v in net.trainable_weights)
    assert trainable == 215 + 2 * 8


@pytest.mark.parametrize(
    "ndim, kwargs, features",
    [
        (2, dict(levels=3, features=3, feature_multiplier=2), [3, 6, 12]),
        (3, dict(levels=3, features=[2, 5, 7], convolutions_per_level=3), [2, 5, 7]),
        (2, dict(levels=4, features=4, feature_multiplier=1.5, kernel_size=5), None),
        (3, dict(levels=1, features=3), [3]),
    ],
)
def test_parameter_count_general(ndim, kwargs, features):
    net = unet((*(None,) * ndim, 2), num_classes=5, normalization=None, **kwargs)
    if features is None:  # as neuron: rounded
        features = [round(4 * 1.5**i) for i in range(kwargs["levels"])]
        assert features == [4, 6, 9, 14]
    expected = _expected_params(
        ndim, 2, 5, kwargs["levels"], features,
        kwargs.get("convolutions_per_level", 2), kwargs.get("kernel_size", 3),
    )  # fmt: skip
    assert net.count_params() == expected


def test_synthseg_defaults_and_layer_names():
    net = unet((None, None, 1), num_classes=7)
    names = [layer.name for layer in net.layers]
    assert "unet_conv_downarm_4_1" in names  # 5 levels, 2 convolutions
    assert "unet_conv_downarm_5_0" not in names
    assert "unet_maxpool_3" in names and "unet_maxpool_4" not in names
    assert net.get_layer("unet_conv_downarm_4_1").filters == 24 * 2**4
    assert net.get_layer("unet_conv_downarm_0_0").kernel_size == (3, 3)
    assert net.get_layer("unet_conv_downarm_0_0").activation.__name__ == "elu"
    assert isinstance(net.get_layer("unet_bn_down_0"), keras.layers.BatchNormalization)
    assert net.get_layer("unet_likelihood").filters == 7


def test_logits_model_shares_weights():
    net = unet((16, 16, 1), num_classes=3, levels=2, features=4, name="seg")
    logits = keras.Model(net.input, net.get_layer("seg_likelihood").output)
    images = make_image((16, 16), batch=2)
    np.testing.assert_allclose(
        to_numpy(keras.ops.softmax(logits(images), axis=-1)),
        to_numpy(net(images)),
        rtol=1e-5,
        atol=1e-6,
    )
    assert len(logits.trainable_weights) == len(net.trainable_weights)
    raw = unet((16, 16, 1), num_classes=3, levels=2, features=4, final_activation=None)
    assert np.any(to_numpy(raw(images)) < 0)


@pytest.mark.parametrize("normalization", ["instance", "layer", None])
def test_other_normalizations(normalization):
    net = unet(
        (None, None, 1), num_classes=2, levels=2, features=4,
        normalization=normalization,
    )  # fmt: skip
    out = to_numpy(net(make_image((8, 12), batch=2), training=True))
    assert out.shape == (2, 8, 12, 2) and np.all(np.isfinite(out))


def test_spatial_size_not_a_multiple():
    with pytest.raises(ValueError, match="multiples of 4"):
        unet((30, 32, 1), num_classes=2, levels=3, features=2)
    net = unet((None, None, 1), num_classes=2, levels=3, features=2)
    with pytest.raises(ValueError, match="multiples of 4"):
        net(make_image((30, 32), batch=1))
    unet((30, 32, 1), num_classes=2, levels=2, features=2)  # multiples of 2


@pytest.mark.slow  # a .keras save and load
def test_keras_round_trip(tmp_path):
    net = unet((None, None, 1), num_classes=3, levels=3, features=4)
    images = make_image((16, 16), batch=2)
    net.compile(optimizer="adam", loss="categorical_crossentropy")
    targets = np.eye(3, dtype="float32")[np.zeros((2, 16, 16), "int32")]
    net.fit(images, targets, epochs=1, verbose=0)  # moving statistics move
    path = str(tmp_path / "unet.keras")
    net.save(path)
    loaded = keras.saving.load_model(path)
    assert _json(loaded.get_config()) == _json(net.get_config())
    np.testing.assert_array_equal(
        loaded.predict(images, verbose=0), net.predict(images, verbose=0)
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(input_shape=(32, 1)), "input_shape"),
        (dict(input_shape=(8, 8, 8, 8, 1)), "input_shape"),
        (dict(input_shape=(8, 8, None)), "input_shape"),
        (dict(input_shape=(8, 0, 1)), "input_shape"),
        (dict(num_classes=0), "num_classes"),
        (dict(levels=0), "levels"),
        (dict(features=0), "features"),
        (dict(features=[4, 8]), "features"),
        (dict(features=2.5), "features"),
        (dict(feature_multiplier=0), "feature_multiplier"),
        (dict(features=1, feature_multiplier=0.1), "round to at least 1"),
        (dict(convolutions_per_level=0), "convolutions_per_level"),
        (dict(kernel_size=True), "kernel_size"),
        (dict(normalization="group"), "normalization"),
        (dict(activation="nope"), "activation"),
        (dict(activation=None), "activation"),
        (dict(final_activation="nope"), "final_activation"),
        (dict(name=""), "name"),
    ],
)
def test_invalid_arguments(kwargs, match):
    arguments = dict(input_shape=(16, 16, 1), num_classes=2, levels=3, features=4)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=match):
        unet(**arguments)
