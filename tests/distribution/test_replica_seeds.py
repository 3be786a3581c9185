"""`replica_seeds` and `seed_generators` on one device (in this process)."""

import keras
import numpy as np

from synthlayers.layers import LabelsToImage
from synthlayers.models import SegmentationModel
from synthlayers.models import unet
from synthlayers.models.segmentation import replica_seeds
from synthlayers.models.segmentation import seed_generators

LABELS = [0, 1, 2]


def _model(seed=0, network=None):
    generator = LabelsToImage(LABELS, rotation=10.0, noise_std=2.0, seed=seed)
    network = network or unet((16, 16, 1), 3, levels=2, features=4)
    return SegmentationModel(generator, network)


def _dropout_network():
    inputs = keras.Input((16, 16, 1))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = keras.layers.Dropout(0.5, seed=1)(x)
    return keras.Model(inputs, keras.layers.Conv2D(3, 1, activation="softmax")(x))


def _maps():
    maps = np.zeros((2, 16, 16, 1), "int32")
    maps[:, 4:12, 4:12] = 1
    maps[:, 6:10, 6:10] = 2
    return maps


def _states(model):
    return [
        keras.ops.convert_to_numpy(g.state).tolist() for g in seed_generators(model)
    ]


def test_seed_generators_finds_every_random_component_once():
    model = _model()
    found = seed_generators(model)
    generator_layers = [
        c for c in model.generator.components if hasattr(c, "seed_generator")
    ]
    assert len(found) == len({id(g) for g in found})
    for layer in [model.generator, *generator_layers]:
        assert any(g is layer.seed_generator for g in found)


def test_seed_generators_include_the_network_dropout():
    model = _model(network=_dropout_network())
    dropout = next(
        layer
        for layer in model.network.layers
        if isinstance(layer, keras.layers.Dropout)
    )
    assert any(g is dropout.seed_generator for g in seed_generators(model))


def test_replica_seeds_does_nothing_on_one_device():
    first, second = _model(seed=3), _model(seed=3)
    maps = _maps()
    with replica_seeds(first):
        assert _states(first) == _states(second)
        out = first.generator(maps, training=True)
    expected = second.generator(maps, training=True)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(out["images"]),
        keras.ops.convert_to_numpy(expected["images"]),
    )
    assert _states(first) == _states(second)


def test_training_call_on_one_device_is_unchanged_and_float_maps_round():
    first, second = _model(seed=5), _model(seed=5)
    maps = _maps()
    out = first(maps, training=True)
    # Float label maps (as Keras's build pass under tf.distribute hands
    # them) are label values: rounded, the same draws follow.
    expected = second(maps.astype("float32") + 0.2, training=True)
    for key in ("images", "segmentation_masks"):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(out[key]),
            keras.ops.convert_to_numpy(expected[key]),
        )
