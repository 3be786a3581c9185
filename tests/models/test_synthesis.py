import keras
import numpy as np
import pytest

from synthlayers.layers import LabelsToImage
from synthlayers.layers import RandomGamma
from synthlayers.models import SynthesisModel
from tests.helpers import make_label_map
from tests.helpers import to_numpy


@pytest.mark.parametrize("shape", [(8, 9), (6, 7, 5)])
def test_predict_draws_per_call_and_per_sample(shape):
    rng = np.random.default_rng(0)
    images = rng.uniform(0.0, 1.0, (3, *shape, 1)).astype("float32")
    images[:, 0], images[:, -1] = 0.0, 1.0  # already spanning [0, 1]
    layer = RandomGamma(seed=0)
    # Inference mode leaves images as they are; the model always draws.
    np.testing.assert_allclose(to_numpy(layer(images, training=False)), images)
    model = SynthesisModel(layer)
    model.compile(jit_compile=keras.backend.backend() in ("tensorflow", "jax"))
    first = model.predict(images, verbose=0)
    second = model.predict_on_batch(images)
    assert first.shape == images.shape
    assert not np.allclose(first, images)
    assert not np.allclose(first, to_numpy(second))  # new draws each call
    assert not np.allclose(first[0], first[1])  # and for each sample


def test_dict_outputs_of_labels_to_image():
    label_map = make_label_map((16, 16), batch=1, labels=[0, 1, 2], seed=0)
    generator = LabelsToImage(labels=[0, 1, 2], output_shape=(12, 12), seed=0)
    drawn = SynthesisModel(generator).predict(label_map, verbose=0)
    assert set(drawn) == {"images", "segmentation_masks"}
    assert drawn["images"].shape == (1, 12, 12, 1)
    assert np.all(np.isfinite(drawn["images"]))
    assert set(np.unique(drawn["segmentation_masks"])) <= {0, 1, 2}


def test_config_and_keras_file_round_trip(tmp_path):
    images = np.linspace(0.0, 1.0, 128, dtype="float32").reshape(2, 8, 8, 1)
    model = SynthesisModel(RandomGamma(seed=3), name="gamma")
    model(images)  # builds it
    config = model.get_config()
    rebuilt = SynthesisModel.from_config(config)
    assert rebuilt.get_config() == config
    assert rebuilt.name == "gamma"
    path = str(tmp_path / "synthesis.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, SynthesisModel)
    assert loaded.layer.get_config() == model.layer.get_config()
    # The same seed gives the same draws as a fresh model.
    fresh = SynthesisModel(RandomGamma(seed=3))
    np.testing.assert_allclose(
        to_numpy(loaded(images)), to_numpy(fresh(images)), rtol=1e-6
    )


def test_layer_must_be_a_layer():
    with pytest.raises(ValueError, match="`layer` must be a Keras layer"):
        SynthesisModel(lambda x: x)
