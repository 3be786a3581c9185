import json

import keras
import numpy as np
import pytest

from synthlayers.layers import LabelsToImage
from synthlayers.losses import DiceLoss
from synthlayers.losses import WeightedL2Loss
from synthlayers.losses import dice_scores
from synthlayers.models import SegmentationModel
from synthlayers.models import unet
from tests.helpers import make_label_map
from tests.helpers import to_numpy

SHAPE = (32, 32)
LABELS = [0, 3, 7, 12]  # generation labels; targets 0..3 via output_labels
TARGETS = {0: 0, 3: 1, 7: 2, 12: 3}
# Per-label intensity priors: distinct but random contrasts, a little noise.
PRIOR_MEANS = [[20.0, 90.0, 160.0, 230.0], [8.0, 8.0, 8.0, 8.0]]
PRIOR_STDS = [[4.0, 4.0, 4.0, 4.0], [1.0, 1.0, 1.0, 1.0]]
# On a CPU, jit_compile="auto" is False under TensorFlow (XLA on a GPU) and
# PyTorch, True under JAX; True is XLA under TensorFlow.
JIT = {
    "tensorflow": [False, pytest.param(True, marks=pytest.mark.slow)]  # XLA compile
}.get(keras.backend.backend(), [False])
STEPS = 30


def _json(config):
    """A config with tuples as lists, as it reads back from a file."""
    return json.loads(json.dumps(config))


def _label_maps(batch=4, seed=0):
    return make_label_map(SHAPE, labels=LABELS, batch=batch, seed=seed)


def _generator(one_hot=False, seed=0, **kwargs):
    return LabelsToImage(
        LABELS, output_labels=TARGETS, one_hot=one_hot, prior_means=PRIOR_MEANS,
        prior_stds=PRIOR_STDS, rotation=10.0, seed=seed, **kwargs,
    )  # fmt: skip


def _network(num_classes=4, **kwargs):
    kwargs = {"levels": 3, "features": 8, "normalization": None, **kwargs}
    return unet((*SHAPE, 1), num_classes, **kwargs)


def _model(one_hot=False, seed=0, **network_kwargs):
    keras.utils.set_random_seed(seed)
    return SegmentationModel(_generator(one_hot, seed), _network(**network_kwargs))


def _check_decreasing(history):
    losses = np.asarray(history.history["loss"])  # one step per epoch
    assert losses.shape == (STEPS,) and np.all(np.isfinite(losses))
    assert 0 <= losses.min() and losses.max() <= 1
    first, last = losses[:5].mean(), losses[-5:].mean()
    assert last < first - 0.1, losses


@pytest.fixture(scope="module")
def trained():
    """A model trained for STEPS steps with the default jit_compile."""
    model = _model(normalization="batch")
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = model.fit(_label_maps(), batch_size=4, epochs=STEPS, verbose=0)
    return model, history


def test_fit_loss_decreases(trained):
    _check_decreasing(trained[1])


@pytest.mark.parametrize("jit_compile", JIT)
def test_fit_loss_decreases_jit_compile(jit_compile):
    model = _model(levels=2)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), jit_compile=jit_compile)
    history = model.fit(_label_maps(), batch_size=4, epochs=STEPS, verbose=0)
    _check_decreasing(history)


def test_predict_and_evaluate(trained):
    model = trained[0]
    label_maps = _label_maps(batch=3)
    out = model.predict(label_maps, batch_size=3, verbose=0)
    assert set(out) == {"images", "segmentation_masks", "predictions"}
    assert out["images"].shape == (3, *SHAPE, 1)
    assert out["segmentation_masks"].shape == (3, *SHAPE, 1)
    assert set(np.unique(out["segmentation_masks"])) <= {0, 1, 2, 3}
    probs = out["predictions"]
    assert probs.shape == (3, *SHAPE, 4) and np.all(probs >= 0)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    # predict is deterministic (training=False) and agrees with the network.
    again = model.predict(label_maps, batch_size=3, verbose=0)
    np.testing.assert_array_equal(again["predictions"], probs)
    direct = model.network.predict(out["images"], batch_size=3, verbose=0)
    np.testing.assert_allclose(direct, probs, rtol=1e-5, atol=1e-6)
    loss = model.evaluate(label_maps, batch_size=3, verbose=0)
    expected = float(DiceLoss()(out["segmentation_masks"], probs))
    assert loss == pytest.approx(expected, rel=1e-4, abs=1e-6)
    # Trained on synthetic images: the deterministic one is segmented well.
    assert expected < 0.5


def test_one_hot_targets_metrics_and_custom_loss():
    model = _model(one_hot=True)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=DiceLoss(include_background=False, squared=False),
        metrics=[dice_scores],
    )
    history = model.fit(_label_maps(), batch_size=2, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert all(0 <= v <= 1 for v in history.history["dice_scores"])
    out = model.predict(_label_maps(batch=2), verbose=0)
    assert out["segmentation_masks"].shape == (2, *SHAPE, 4)


def test_weighted_l2_warm_up_then_dice():
    model = _model(normalization="batch", levels=2)
    net = model.network
    logits = keras.Model(net.input, net.get_layer("unet_likelihood").output)
    warm_up = SegmentationModel(model.generator, logits)
    warm_up.compile(optimizer=keras.optimizers.Adam(1e-3), loss=WeightedL2Loss())
    before = to_numpy(net.get_layer("unet_likelihood").kernel).copy()
    history = warm_up.fit(_label_maps(), batch_size=2, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    after = to_numpy(net.get_layer("unet_likelihood").kernel)
    assert not np.allclose(before, after)  # shared weights were trained
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(_label_maps(), batch_size=2, epochs=1, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))


@pytest.mark.slow  # a .keras save and load of the whole model
def test_keras_round_trip(trained, tmp_path):
    model = trained[0]
    label_maps = _label_maps()
    path = str(tmp_path / "segmentation.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, SegmentationModel)
    assert _json(loaded.get_config()) == _json(model.get_config())
    images = model.predict(label_maps, verbose=0)["images"]
    np.testing.assert_array_equal(
        loaded.network.predict(images, verbose=0),
        model.network.predict(images, verbose=0),
    )
    np.testing.assert_array_equal(
        loaded.predict(label_maps, verbose=0)["predictions"],
        model.predict(label_maps, verbose=0)["predictions"],
    )
    # The loaded model keeps its compiled loss and trains on.
    assert isinstance(loaded.loss, DiceLoss)
    history = loaded.fit(label_maps, batch_size=2, epochs=1, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))


def test_fit_with_targets_is_an_error():
    model = _model()
    model.compile()
    label_maps = _label_maps()
    with pytest.raises(ValueError, match="label maps only"):
        model.fit(label_maps, label_maps, epochs=1, verbose=0)


def test_targets_must_match_network_outputs():
    # Integer targets up to 12 (no remap to indices) for 4 outputs.
    generator = LabelsToImage(LABELS, output_labels=LABELS, seed=0)
    with pytest.raises(ValueError, match="integer targets up to 12"):
        SegmentationModel(generator, _network())
    generator = LabelsToImage(LABELS, seed=0)  # output_labels=None: raw labels
    with pytest.raises(ValueError, match="integer targets up to 12"):
        SegmentationModel(generator, _network())
    with pytest.raises(ValueError, match="4 one-hot target channels"):
        SegmentationModel(_generator(one_hot=True), _network(num_classes=5))
    SegmentationModel(_generator(), _network(num_classes=5))  # 0..3 of 5: fine
    with pytest.raises(ValueError, match="generator"):
        SegmentationModel("generator", _network())
    with pytest.raises(ValueError, match="network"):
        SegmentationModel(_generator(), None)


def test_generator_must_return_a_dict():
    model = SegmentationModel(keras.layers.Identity(), _network())
    with pytest.raises(ValueError, match="must return a dict"):
        model(_label_maps())
