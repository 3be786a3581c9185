"""Export of the inference network as a TensorFlow SavedModel, any spatial size."""

import os

import keras
import numpy as np
import pytest

from synthlayers.inference import export_network

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="tf_saved_model export is exercised on the TensorFlow backend only "
    "(reloading needs tf.saved_model; JAX export goes through jax2tf)",
)


def network(rank, channels=4, seed=0):
    """A small U-Net-like network: conv, downsample, upsample, skip, softmax."""
    keras.utils.set_random_seed(seed)
    conv = {2: keras.layers.Conv2D, 3: keras.layers.Conv3D}[rank]
    pool = {2: keras.layers.MaxPooling2D, 3: keras.layers.MaxPooling3D}[rank]
    up = {2: keras.layers.UpSampling2D, 3: keras.layers.UpSampling3D}[rank]
    inputs = keras.Input((None,) * rank + (1,))
    skip = conv(4, 3, padding="same", activation="elu")(inputs)
    x = conv(8, 3, padding="same", activation="elu")(pool(2)(skip))
    x = keras.layers.Concatenate()([up(2)(x), skip])
    x = keras.layers.BatchNormalization()(x)
    outputs = conv(channels, 1, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def _reload_and_compare(model, path, shapes):
    import tensorflow as tf

    served = tf.saved_model.load(str(path))
    rng = np.random.default_rng(1)
    for shape in shapes:
        x = rng.random(shape).astype("float32")
        expected = keras.ops.convert_to_numpy(model(x, training=False))
        actual = served.serve(tf.constant(x)).numpy()
        assert actual.shape == expected.shape
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "rank, shapes",
    [
        (2, [(1, 24, 18, 1), (3, 10, 34, 1)]),
        (3, [(1, 12, 10, 14, 1), (2, 8, 16, 6, 1)]),
    ],
)
def test_export_network_any_spatial_size(tmp_path, rank, shapes):
    model = network(rank)
    model(np.zeros((1,) + (8,) * rank + (1,), "float32"))  # never these sizes
    path = export_network(model, tmp_path / f"net{rank}d")
    _reload_and_compare(model, path, shapes)


def test_model_export_directly(tmp_path):
    # The public Keras call the helper wraps: inputs with None spatial sizes
    # give a signature that accepts any size.
    model = network(2, channels=3)
    model.export(tmp_path / "direct", format="tf_saved_model", verbose=False)
    _reload_and_compare(model, tmp_path / "direct", [(2, 14, 22, 1)])


def test_export_network_bad_model(tmp_path):
    with pytest.raises(ValueError, match="one input.*Received: model"):
        export_network(keras.Sequential([keras.layers.Dense(2)]), tmp_path / "x")


def test_export_segmenter_writes_its_metadata_beside(tmp_path):
    from synthlayers.models import Segmenter
    from synthlayers.models import read_metadata

    segmenter = Segmenter(network(2, channels=3), [0, 17, 53], slice_axes=1)
    path = export_network(segmenter, tmp_path / "savedmodel")
    assert (tmp_path / "savedmodel" / "saved_model.pb").is_file()
    metadata = read_metadata(path, kind="segmentation")
    assert metadata == segmenter.metadata
    assert metadata["output_labels"] == [0, 17, 53]
    assert metadata["flip_pairs"] == [[1, 2]]
    _reload_and_compare(segmenter.network, path, [(1, 12, 20, 1)])
    # Exporting again replaces the directory; nothing else is left beside it.
    export_network(segmenter, path, metadata={"kind": "registration"})
    assert read_metadata(path)["kind"] == "registration"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["savedmodel"]


def test_export_of_a_plain_network_has_no_metadata(tmp_path):
    path = export_network(network(2), tmp_path / "plain")
    assert not (tmp_path / "plain" / "synthlayers.json").exists()
    with pytest.raises(ValueError, match="directory without it"):
        from synthlayers.models import read_metadata

        read_metadata(path)


def test_failed_export_leaves_nothing(tmp_path, monkeypatch):
    model = network(2)

    def fail(*args, **kwargs):
        os.makedirs(args[0])
        raise RuntimeError("interrupted")

    monkeypatch.setattr(model, "export", fail)
    with pytest.raises(RuntimeError, match="interrupted"):
        export_network(model, tmp_path / "out", metadata={"kind": "segmentation"})
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="kind"):
        export_network(network(2), tmp_path / "out", metadata={"labels": [1]})
    assert list(tmp_path.iterdir()) == []
