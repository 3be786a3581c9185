import keras
import numpy as np
import pytest

from synthlayers.losses import DiceLoss
from synthlayers.losses import GradientLoss
from synthlayers.losses import LocalNCCLoss
from synthlayers.losses import MeanSquaredErrorLoss
from synthlayers.losses import WeightedL2Loss
from synthlayers.losses import cross_entropy
from synthlayers.losses import dice_loss
from synthlayers.losses import dice_scores
from synthlayers.losses import gradient_penalty
from synthlayers.losses import local_ncc
from synthlayers.losses import mean_squared_error
from synthlayers.losses import one_hot_targets
from synthlayers.losses import weighted_l2_loss
from tests.helpers import to_numpy


def _one_hot(labels, num_classes):
    labels = labels[..., 0]
    return (labels[..., None] == np.arange(num_classes)).astype("float64")


def _dice_reference(target, probs, smooth=1e-5, squared=True):
    """Per-sample, per-label soft Dice in float64."""
    target, probs = target.astype("float64"), probs.astype("float64")
    axes = tuple(range(1, target.ndim - 1))
    top = 2 * (target * probs).sum(axes)
    if squared:
        bottom = (target**2).sum(axes) + (probs**2).sum(axes)
    else:
        bottom = target.sum(axes) + probs.sum(axes)
    return (top + smooth) / (bottom + smooth)


def _dice_loss_reference(target, probs, weights=None, background=True, **kw):
    scores = _dice_reference(target, probs, **kw)
    weights = np.ones(scores.shape[-1]) if weights is None else np.asarray(weights)
    weights = weights.astype("float64").copy()
    if not background:
        weights[0] = 0
    return 1 - (scores * weights).sum(-1) / weights.sum()


def _wl2_reference(target, scores, target_value=5.0):
    target, scores = target.astype("float64"), scores.astype("float64")
    mask = 1 - target[..., :1]
    axes = tuple(range(1, target.ndim))
    top = (mask * (scores - target_value * (2 * target - 1)) ** 2).sum(axes)
    return top / (mask.sum(axes) * target.shape[-1] + keras.config.epsilon())


def _random_case(rng, spatial, num_classes, batch=2):
    labels = rng.integers(0, num_classes, (batch, *spatial, 1)).astype("int32")
    logits = rng.normal(size=(batch, *spatial, num_classes)) * 2
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return labels, probs.astype("float32"), logits.astype("float32")


def _gradient(fn, x):
    """d sum(fn(x)) / dx with the backend's own autodiff."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = tf.reduce_sum(fn(x))
        return tape.gradient(value, x).numpy()
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        return np.asarray(jax.grad(lambda v: jnp.sum(fn(v)))(jnp.asarray(x)))
    import torch

    x = torch.tensor(x, requires_grad=True)
    torch.sum(fn(x)).backward()
    return x.grad.numpy()


# Dice ----------------------------------------------------------------------


@pytest.mark.parametrize("squared", [True, False])
def test_dice_hand_computed(squared):
    # One 2x2 sample, 2 labels: target [[0, 1], [1, 1]].
    labels = np.array([0, 1, 1, 1]).reshape(1, 2, 2, 1)
    p1 = np.array([0.2, 0.6, 0.8, 1.0])
    probs = np.stack([1 - p1, p1], -1).reshape(1, 2, 2, 2).astype("float32")
    if squared:  # sum(g^2) + sum(p^2)
        expected = [1.6 / (1 + 0.84), 4.8 / (3 + 2.04)]
    else:  # sum(g) + sum(p)
        expected = [1.6 / (1 + 1.4), 4.8 / (3 + 2.6)]
    scores = to_numpy(dice_scores(labels, probs, smooth=0.0, squared=squared))
    np.testing.assert_allclose(scores, [expected], rtol=1e-6)
    loss = to_numpy(dice_loss(labels, probs, smooth=0.0, squared=squared))
    np.testing.assert_allclose(loss, [1 - np.mean(expected)], rtol=1e-6)
    loss = DiceLoss(smooth=0.0, squared=squared, include_background=False)
    np.testing.assert_allclose(float(loss(labels, probs)), 1 - expected[1], atol=1e-6)


@pytest.mark.parametrize("squared", [True, False])
@pytest.mark.parametrize("one_hot", [False, True])
def test_dice_perfect_prediction_is_zero(squared, one_hot, rng):
    labels, _, _ = _random_case(rng, (6, 5, 4), 4)
    labels[0, 0, 0, 0] = 3  # every label present
    perfect = _one_hot(labels, 4).astype("float32")
    target = perfect if one_hot else labels
    scores = to_numpy(dice_scores(target, perfect, squared=squared))
    np.testing.assert_allclose(scores, 1.0, atol=1e-6)
    assert float(DiceLoss(squared=squared)(target, perfect)) == pytest.approx(
        0, abs=1e-6
    )


def test_dice_disjoint_prediction_is_one(rng):
    labels, _, _ = _random_case(rng, (8, 8), 3)
    wrong = _one_hot((labels + 1) % 3, 3).astype("float32")  # never the target
    loss = to_numpy(dice_loss(labels, wrong, smooth=0.0))
    np.testing.assert_allclose(loss, 1.0, atol=1e-7)
    # With the default smoothing, just below 1.
    loss = to_numpy(dice_loss(labels, wrong))
    np.testing.assert_allclose(loss, 1.0, atol=1e-5)
    assert np.all(loss < 1)


def test_label_absent_from_target_and_prediction_scores_one():
    labels = np.zeros((1, 4, 4, 1), "int32")
    probs = _one_hot(labels, 3).astype("float32")  # label 1, 2 absent everywhere
    np.testing.assert_allclose(to_numpy(dice_scores(labels, probs)), [[1, 1, 1]])


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("squared", [True, False])
@pytest.mark.parametrize(
    "weights, background",
    [(None, True), (None, False), ([0.5, 2.0, 1.0, 0.0], True), ([3, 1, 1, 2], False)],
)
def test_dice_matches_reference(ndim, squared, weights, background, rng):
    spatial = (7, 6) if ndim == 2 else (5, 4, 6)
    labels, probs, _ = _random_case(rng, spatial, 4, batch=3)
    expected = _dice_loss_reference(
        _one_hot(labels, 4), probs, weights, background, squared=squared
    )
    for target in (labels, _one_hot(labels, 4).astype("float32")):
        got = to_numpy(dice_loss(target, probs, weights, background, squared=squared))
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    loss = DiceLoss(
        label_weights=weights, include_background=background, squared=squared
    )
    np.testing.assert_allclose(float(loss(labels, probs)), expected.mean(), rtol=1e-5)
    sample_weight = np.array([1.0, 0.0, 2.0])
    np.testing.assert_allclose(
        float(loss(labels, probs, sample_weight=sample_weight)),
        (expected * sample_weight).mean(),
        rtol=1e-5,
    )


@pytest.mark.parametrize("weights, background", [(None, True), ([3, 1, 1, 2], False)])
def test_dice_ignoring_absent_labels_matches_reference(weights, background, rng):
    labels, probs, _ = _random_case(rng, (7, 6), 4, batch=3)
    labels[0][labels[0] == 2] = 1  # sample 0: label 2 absent
    labels[1][labels[1] > 0] = 0  # sample 1: background only
    target = _one_hot(labels, 4)
    scores = _dice_reference(target, probs)
    w = np.ones(4) if weights is None else np.asarray(weights, "float64")
    w = w * (np.arange(4) > 0 if not background else 1)
    w = w * (target.sum((1, 2)) > 0)  # (batch, K): present labels only
    expected = np.where(
        w.sum(-1) > 0, 1 - (scores * w).sum(-1) / np.maximum(w.sum(-1), 1e-12), 0
    )
    got = to_numpy(
        dice_loss(labels, probs, weights, background, ignore_absent_labels=True)
    )
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert not background or got[1] == pytest.approx(1 - scores[1, 0], rel=1e-5)
    assert background or got[1] == 0  # no label present: nothing to score
    # The absent label's own probabilities do not count (only through the
    # labels they crowd out, in a softmax); they do by default.
    everywhere = probs.copy()
    everywhere[0, ..., 2] += 1.0
    moved = to_numpy(
        dice_loss(labels, everywhere, weights, background, ignore_absent_labels=True)
    )
    assert moved[0] == got[0]
    default = to_numpy(dice_loss(labels, probs, weights, background))
    assert to_numpy(dice_loss(labels, everywhere, weights, background))[0] > default[0]
    loss = DiceLoss(ignore_absent_labels=True)
    assert loss.get_config()["ignore_absent_labels"] is True
    assert DiceLoss.from_config(loss.get_config()).ignore_absent_labels is True


def test_dice_soft_targets_and_out_of_range_labels(rng):
    _, probs, _ = _random_case(rng, (6, 6), 3)
    _, soft, _ = _random_case(rng, (6, 6), 3)
    np.testing.assert_allclose(
        to_numpy(dice_scores(soft, probs)), _dice_reference(soft, probs), rtol=1e-5
    )
    # Labels outside 0..K-1 belong to no class (all-zero one-hot).
    labels = np.array([0, 1, 7, -1]).reshape(1, 2, 2, 1)
    np.testing.assert_array_equal(
        to_numpy(one_hot_targets(labels, 2)).reshape(4, 2),
        [[1, 0], [0, 1], [0, 0], [0, 0]],
    )


def test_dice_gradients_are_finite(rng):
    labels, _, logits = _random_case(rng, (6, 6), 3)

    def fn(x):
        return DiceLoss()(labels, keras.ops.softmax(x, axis=-1))

    grad = _gradient(fn, logits)
    assert grad.shape == logits.shape and np.all(np.isfinite(grad))
    assert np.abs(grad).max() > 0
    # Exactly one-hot predictions (zeros) and an absent label: still finite.
    perfect = _one_hot(labels % 2, 3).astype("float32")
    grad = _gradient(lambda x: dice_loss(labels % 2, x), perfect)
    assert np.all(np.isfinite(grad))


def test_dice_config_and_serialization():
    loss = DiceLoss(
        label_weights=[1, 2, 3],
        include_background=False,
        smooth=0.5,
        cross_entropy_weight=2,
    )
    config = loss.get_config()
    assert config["label_weights"] == [1.0, 2.0, 3.0]
    assert config["cross_entropy_weight"] == 2.0
    again = DiceLoss.from_config(config)
    assert again.get_config() == config
    revived = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(loss)
    )
    assert isinstance(revived, DiceLoss) and revived.get_config() == config
    assert keras.saving.get_registered_object("synthlayers>dice_loss") is dice_loss
    assert (
        keras.saving.get_registered_object("synthlayers>cross_entropy") is cross_entropy
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"smooth": -1},
        {"smooth": "a"},
        {"include_background": 1},
        {"label_weights": [1, -1]},
        {"label_weights": [0, 0]},
        {"label_weights": [1, 0], "include_background": False},
        {"label_weights": "ab"},
        {"ignore_absent_labels": "yes"},
        {"cross_entropy_weight": -1},
        {"cross_entropy_weight": "1"},
    ],
)
def test_dice_invalid_arguments(kwargs):
    with pytest.raises(ValueError, match="Received"):
        DiceLoss(**kwargs)


def test_dice_invalid_shapes(rng):
    labels, probs, _ = _random_case(rng, (4, 4), 3)
    with pytest.raises(ValueError, match="one entry per label"):
        DiceLoss(label_weights=[1, 1])(labels, probs)
    with pytest.raises(ValueError, match="y_true.shape"):
        dice_loss(np.zeros((2, 4, 4, 2)), probs)
    with pytest.raises(ValueError, match="same rank"):
        dice_loss(labels[..., 0], probs)
    with pytest.raises(ValueError, match="at least 2 labels"):
        dice_loss(labels, probs[..., :1], include_background=False)


# Cross-entropy -------------------------------------------------------------


def _cross_entropy_reference(target, probs, epsilon=1e-7):
    """Per-sample mean over voxels of -sum_k g_k log p_k, in float64."""
    log_p = np.log(np.clip(probs.astype("float64"), epsilon, 1.0))
    voxelwise = -(target.astype("float64") * log_p).sum(-1)
    return voxelwise.reshape(len(voxelwise), -1).mean(-1)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("one_hot", [False, True])
def test_cross_entropy_matches_reference(ndim, one_hot, rng):
    labels, probs, _ = _random_case(rng, (5,) * ndim, 4)
    probs[0, (0,) * ndim] = [0.0, 0.0, 0.0, 1.0]  # log 0 is clipped
    labels[0, (0,) * ndim] = 0
    labels[1, (1,) * ndim] = 9  # outside 0..K-1: no class, counts 0
    target = _one_hot(labels, 4)
    y_true = target.astype("float32") if one_hot else labels
    expected = _cross_entropy_reference(target, probs)
    assert expected[0] > -np.log(1e-7) / 5**ndim  # the clipped voxel counts
    np.testing.assert_allclose(
        to_numpy(cross_entropy(y_true, probs)), expected, rtol=1e-5
    )


@pytest.mark.parametrize("epsilon", [0, -1, 1, "a", None])
def test_cross_entropy_invalid_epsilon(epsilon, rng):
    labels, probs, _ = _random_case(rng, (4, 4), 3)
    with pytest.raises(ValueError, match="epsilon"):
        cross_entropy(labels, probs, epsilon=epsilon)
    with pytest.raises(ValueError, match="same rank"):
        cross_entropy(labels[..., 0], probs)


def test_dice_loss_with_cross_entropy_matches_reference(rng):
    labels, probs, logits = _random_case(rng, (6, 6), 3)
    target = _one_hot(labels, 3)
    expected = _dice_loss_reference(target, probs) + 0.5 * _cross_entropy_reference(
        target, probs
    )
    loss = DiceLoss(cross_entropy_weight=0.5)
    np.testing.assert_allclose(float(loss(labels, probs)), expected.mean(), rtol=1e-5)
    # A perfect prediction: both terms 0.
    assert float(loss(labels, target.astype("float32"))) == pytest.approx(0, abs=1e-5)

    def fn(x):
        return loss(labels, keras.ops.softmax(x, axis=-1))

    grad = _gradient(fn, logits)
    assert np.all(np.isfinite(grad)) and np.abs(grad).max() > 0


# Weighted L2 ---------------------------------------------------------------


def test_weighted_l2_hand_computed():
    labels = np.array([0, 1, 1, 2]).reshape(1, 2, 2, 1)
    # Zero scores: every term is target_value ** 2 = 25 over the foreground.
    assert float(WeightedL2Loss()(labels, np.zeros((1, 2, 2, 3)))) == pytest.approx(
        25.0
    )
    # Scores at +-target_value: 0. Background voxels do not count.
    perfect = 2.0 * (2 * _one_hot(labels, 3) - 1)
    perfect[0, 0, 0] = [-9.0, 4.0, 1.0]  # background voxel, any value
    assert float(WeightedL2Loss(target_value=2.0)(labels, perfect)) == pytest.approx(
        0.0, abs=1e-6
    )
    # One foreground voxel off by 3 in one channel: 9 / (3 channels * 3 voxels).
    perfect[0, 1, 1, 2] += 3.0
    assert float(
        weighted_l2_loss(labels, perfect, target_value=2.0)[0]
    ) == pytest.approx(1.0, rel=1e-6)


@pytest.mark.parametrize("ndim", [2, 3])
def test_weighted_l2_matches_reference(ndim, rng):
    spatial = (7, 6) if ndim == 2 else (5, 4, 6)
    labels, _, logits = _random_case(rng, spatial, 4, batch=3)
    expected = _wl2_reference(_one_hot(labels, 4), logits * 3, target_value=3.0)
    for target in (labels, _one_hot(labels, 4).astype("float32")):
        got = to_numpy(weighted_l2_loss(target, logits * 3, target_value=3.0))
        np.testing.assert_allclose(got, expected, rtol=1e-5)
    loss = WeightedL2Loss(target_value=3.0)
    np.testing.assert_allclose(
        float(loss(labels, logits * 3)), expected.mean(), rtol=1e-5
    )


def test_weighted_l2_background_only_sample_and_gradients(rng):
    labels = np.zeros((2, 4, 4, 1), "int32")
    labels[1, 1:3, 1:3] = 1
    _, _, logits = _random_case(rng, (4, 4), 2)
    loss = to_numpy(weighted_l2_loss(labels, logits))
    assert loss[0] == 0 and loss[1] > 0
    grad = _gradient(lambda x: WeightedL2Loss()(labels, x), logits)
    assert np.all(np.isfinite(grad))
    assert np.all(grad[0] == 0) and np.abs(grad[1]).max() > 0


def test_weighted_l2_config_and_errors():
    loss = WeightedL2Loss(target_value=4)
    config = loss.get_config()
    assert config["target_value"] == 4.0
    assert WeightedL2Loss.from_config(config).get_config() == config
    for bad in (0, -1, "5", True):
        with pytest.raises(ValueError, match="target_value"):
            WeightedL2Loss(target_value=bad)


# --- registration losses ------------------------------------------------------


def _gradient_reference(field, penalty="l2"):
    """VoxelMorph's Grad: per axis mean of squared forward differences, averaged."""
    field = field.astype("float64")
    ndim = field.ndim - 2
    terms = []
    for axis in range(1, ndim + 1):
        d = np.diff(field, axis=axis)
        d = d**2 if penalty == "l2" else np.abs(d)
        terms.append(d.reshape(d.shape[0], -1).mean(-1))
    return np.mean(terms, axis=0)


def _box_sum_reference(x, window):
    """Sums over a box, zeros outside, as a "same" convolution, float64.

    Output voxel `i` sums the input over `[i - (w - 1) // 2, i + w // 2]`.
    """
    out = x.astype("float64")
    for axis, width in enumerate(window, start=1):
        before, after = (width - 1) // 2, width // 2
        pad = [(0, 0)] * out.ndim
        pad[axis] = (before, after)
        padded = np.pad(out, pad)
        n = out.shape[axis]
        out = sum(np.take(padded, np.arange(k, k + n), axis=axis) for k in range(width))
    return out


def _ncc_reference(t, p, window, epsilon=1e-5):
    t, p = t.astype("float64"), p.astype("float64")
    n = float(np.prod(window))
    s = {k: _box_sum_reference(v, window) for k, v in
         dict(t=t, p=p, tt=t * t, pp=p * p, tp=t * p).items()}  # fmt: skip
    cross = s["tp"] - s["t"] * s["p"] / n
    var_t = s["tt"] - s["t"] ** 2 / n
    var_p = s["pp"] - s["p"] ** 2 / n
    cc = cross**2 / (var_t * var_p + epsilon)
    return cc.reshape(cc.shape[0], -1).mean(-1)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("penalty", ["l2", "l1"])
def test_gradient_penalty_matches_reference(ndim, penalty, rng):
    shape = {2: (9, 7), 3: (6, 5, 4)}[ndim]
    field = rng.normal(size=(3, *shape, ndim)).astype("float32")
    expected = _gradient_reference(field, penalty)
    np.testing.assert_allclose(
        to_numpy(gradient_penalty(field, penalty)), expected, rtol=1e-5
    )
    loss = GradientLoss(penalty=penalty)
    np.testing.assert_allclose(float(loss(field, field)), expected.mean(), rtol=1e-5)


def test_gradient_penalty_hand_computed_and_translation_invariant():
    field = np.zeros((2, 4, 4, 2), "float32")
    field[0, ..., 0] = np.arange(4)[:, None]  # d u_0 / d x_0 = 1
    field[1] = 3.5  # a translation
    np.testing.assert_allclose(to_numpy(gradient_penalty(field)), [0.25, 0.0])
    np.testing.assert_allclose(to_numpy(gradient_penalty(field, "l1")), [0.25, 0.0])


def test_gradient_loss_config_and_errors():
    loss = GradientLoss(penalty="l1")
    assert GradientLoss.from_config(loss.get_config()).penalty == "l1"
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(loss)
    )
    assert isinstance(restored, GradientLoss) and restored.penalty == "l1"
    with pytest.raises(ValueError, match="penalty"):
        GradientLoss(penalty="l3")
    with pytest.raises(ValueError, match="penalty"):
        gradient_penalty(np.zeros((1, 4, 4, 2)), penalty="bending")


@pytest.mark.parametrize("ndim", [2, 3])
def test_mean_squared_error_matches_reference(ndim, rng):
    shape = {2: (8, 7), 3: (5, 4, 6)}[ndim]
    a = rng.normal(size=(2, *shape, 2)).astype("float32")
    b = rng.normal(size=(2, *shape, 2)).astype("float32")
    expected = ((a.astype("float64") - b) ** 2).reshape(2, -1).mean(-1)
    np.testing.assert_allclose(to_numpy(mean_squared_error(a, b)), expected, rtol=1e-5)
    np.testing.assert_allclose(
        float(MeanSquaredErrorLoss()(a, b)), expected.mean(), rtol=1e-5
    )
    with pytest.raises(ValueError, match="same shape"):
        mean_squared_error(a, b[:, :-1])


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("window", [9, 4, [3, 5, 2]])
def test_local_ncc_matches_reference(ndim, window, rng):
    shape = {2: (13, 11), 3: (10, 9, 8)}[ndim]
    if isinstance(window, list):
        window = window[:ndim]
    t = rng.random((2, *shape, 1)).astype("float32")
    p = (0.5 * t + 0.5 * rng.random((2, *shape, 1))).astype("float32")
    full = window if isinstance(window, list) else [window] * ndim
    expected = _ncc_reference(t, p, full)
    np.testing.assert_allclose(
        to_numpy(local_ncc(t, p, window=window)), expected, rtol=1e-4, atol=1e-5
    )
    loss = LocalNCCLoss(window=window)
    np.testing.assert_allclose(float(loss(t, p)), -expected.mean(), rtol=1e-4)


def test_local_ncc_properties_and_errors(rng):
    image = rng.random((2, 16, 16, 2)).astype("float32")
    # 1 for a rescaled image (an offset would not be: zeros pad the edges,
    # as in VoxelMorph).
    np.testing.assert_allclose(to_numpy(local_ncc(image, 3 * image)), 1, atol=1e-4)
    assert np.all(to_numpy(local_ncc(image, 3 * image + 2)) < 0.99)
    noise = rng.random((2, 16, 16, 2)).astype("float32")
    assert np.all(to_numpy(local_ncc(image, noise)) < 0.3)
    loss = LocalNCCLoss(window=5)
    restored = LocalNCCLoss.from_config(loss.get_config())
    assert restored.window == 5 and restored.epsilon == 1e-5
    for bad in (0, 2.5, [3, 0], True):
        with pytest.raises(ValueError, match="window"):
            LocalNCCLoss(window=bad)
    with pytest.raises(ValueError, match="window"):
        local_ncc(image, image, window=[3, 3, 3])


def test_dice_labels_subset_matches_reference(rng):
    labels = rng.integers(0, 4, (2, 6, 5, 1))
    probs = rng.dirichlet(np.ones(4), size=(2, 6, 5)).astype("float32")
    scores = _dice_reference(_one_hot(labels, 4), probs, squared=False)
    expected = 1 - scores[:, [1, 3]].mean(-1)
    out = dice_loss(labels, probs, squared=False, labels=[3, 1])
    np.testing.assert_allclose(to_numpy(out), expected, rtol=1e-5)
    loss = DiceLoss(squared=False, labels=[1, 3])
    np.testing.assert_allclose(float(loss(labels, probs)), expected.mean(), rtol=1e-5)
    assert DiceLoss.from_config(loss.get_config()).labels == [1, 3]
    # The background excluded on top of the subset.
    out = dice_loss(labels, probs, labels=[0, 2], include_background=False)
    np.testing.assert_allclose(
        to_numpy(out), 1 - _dice_reference(_one_hot(labels, 4), probs)[:, 2], rtol=1e-5
    )
    for bad in ([], [1, 1], [-1], [4], [1.5], 3):
        with pytest.raises(ValueError, match="labels"):
            dice_loss(labels, probs, labels=bad)
    with pytest.raises(ValueError, match="labels"):
        dice_loss(labels, probs, labels=[0], include_background=False)
