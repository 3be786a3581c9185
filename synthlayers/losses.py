"""Losses: soft Dice, cross-entropy, SynthSeg's weighted-L2 warm-up; registration.

Segmentation:

Targets (`y_true`) are either integer labels `(batch, *spatial, 1)` with
values in `0..num_classes-1` (any other value belongs to no class) or one-hot
(or probabilistic) maps `(batch, *spatial, num_classes)`; predictions
(`y_pred`) are `(batch, *spatial, num_classes)`. Keras casts `y_true` to
float before a `Loss` sees it, so the two are told apart by their number of
channels: one channel against several predicted classes means labels. Each
loss returns one value per sample, which Keras averages over the batch
(`reduction="sum_over_batch_size"`, with `sample_weight` if given).

Registration (SynthMorph, VoxelMorph): the label Dice above on one-hot
label maps (the fixed labels against the moving labels warped linearly,
see `synthlayers.models.RegistrationModel`), `GradientLoss` (the L2
gradient penalty of a displacement field, VoxelMorph's `Grad("l2")`), and
for images of one contrast `MeanSquaredErrorLoss` and `LocalNCCLoss`
(VoxelMorph's `NCC`, window 9).
"""

import numbers

import keras
import numpy as np
from keras import ops


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def one_hot_targets(y_true, num_classes, dtype="float32"):
    """Targets as a `(batch, *spatial, num_classes)` one-hot float tensor.

    Integer labels `(batch, *spatial, 1)` (possibly stored as floats) become
    one-hot; values outside `0..num_classes-1` give all-zero vectors. A
    tensor with `num_classes` channels is returned as it is (cast).
    """
    channels = y_true.shape[-1]
    if channels == num_classes:
        return ops.cast(y_true, dtype)
    if channels == 1:
        labels = ops.cast(ops.round(ops.cast(y_true, "float32")), "int32")
        return ops.cast(
            ops.equal(labels, ops.arange(num_classes, dtype="int32")), dtype
        )
    raise ValueError(
        "Expected targets of shape (batch, *spatial, 1) (integer labels) or "
        f"(batch, *spatial, {num_classes}) (one-hot), for predictions with "
        f"{num_classes} channels. Received: y_true.shape={tuple(y_true.shape)}"
    )


def _check_ranks(y_true, y_pred):
    if len(y_true.shape) != len(y_pred.shape) or len(y_pred.shape) < 3:
        raise ValueError(
            "Expected y_true and y_pred of the same rank, (batch, *spatial, "
            f"channels). Received: y_true.shape={tuple(y_true.shape)}, "
            f"y_pred.shape={tuple(y_pred.shape)}"
        )


@keras.saving.register_keras_serializable(package="synthlayers")
def dice_scores(y_true, y_pred, smooth=1e-5, squared=True):
    """Soft Dice score of every label of every sample.

    For sample `b` and label `k`, with `g` the one-hot target and `p` the
    predicted probabilities, summed over space:
    `(2 * sum(g * p) + smooth) / (sum(g ** 2) + sum(p ** 2) + smooth)`
    (`squared=True`, SynthSeg's `DiceLoss`), or with `sum(g) + sum(p)` in
    the denominator (`squared=False`, the usual soft Dice). With a hard
    prediction both are the Dice overlap; a label absent from both the
    target and the prediction scores 1 (with `smooth > 0`).

    Reference:
        - [Billot et al., SynthSeg: Segmentation of brain MRI scans of any
          contrast and resolution without retraining, Medical Image Analysis
          2023](https://doi.org/10.1016/j.media.2023.102789)
        - Milletari et al., V-Net, 3DV 2016 (the squared denominator).

    Args:
        y_true: integer labels `(batch, *spatial, 1)` in `0..K-1`, or one-hot
            `(batch, *spatial, K)`.
        y_pred: probabilities `(batch, *spatial, K)`.
        smooth: added to numerator and denominator (>= 0). Defaults to
            `1e-5`.
        squared: square the terms of the denominator. Defaults to `True`.

    Returns:
        `(batch, K)` float32 scores in `[0, 1]`.

    Example:

    >>> import numpy as np
    >>> labels = np.array([0, 1, 1, 2]).reshape(1, 2, 2, 1)
    >>> scores = dice_scores(labels, np.eye(3)[labels[..., 0]])
    >>> np.round(np.asarray(scores), 4).tolist()
    [[1.0, 1.0, 1.0]]
    """
    y_pred = ops.cast(ops.convert_to_tensor(y_pred), "float32")
    y_true = ops.convert_to_tensor(y_true)
    _check_ranks(y_true, y_pred)
    target = one_hot_targets(y_true, y_pred.shape[-1])
    axes = tuple(range(1, len(y_pred.shape) - 1))
    top = 2.0 * ops.sum(target * y_pred, axis=axes)
    if squared:
        bottom = ops.sum(ops.square(target), axis=axes) + ops.sum(
            ops.square(y_pred), axis=axes
        )
    else:
        bottom = ops.sum(target, axis=axes) + ops.sum(y_pred, axis=axes)
    return (top + smooth) / (bottom + smooth)


def _check_dice_arguments(
    label_weights, include_background, smooth, ignore_absent_labels=False
):
    if not _is_number(smooth) or smooth < 0:
        raise ValueError(f"`smooth` must be a number >= 0. Received: smooth={smooth!r}")
    if not isinstance(include_background, bool):
        raise ValueError(
            "`include_background` must be True or False. Received: "
            f"include_background={include_background!r}"
        )
    if not isinstance(ignore_absent_labels, bool):
        raise ValueError(
            "`ignore_absent_labels` must be True or False. Received: "
            f"ignore_absent_labels={ignore_absent_labels!r}"
        )
    if label_weights is None:
        return None
    try:
        weights = [float(w) for w in label_weights]
    except (TypeError, ValueError):
        weights = None
    if (
        not weights
        or any(not w >= 0 for w in weights)
        or sum(weights[0 if include_background else 1 :]) <= 0
    ):
        raise ValueError(
            "`label_weights` must be a list of non-negative numbers, one per "
            "label, with a positive sum (over the labels taken into account). "
            f"Received: label_weights={label_weights!r}"
        )
    return weights


def _check_labels(labels, num_classes=None):
    """`labels` (channel indices) as a sorted list of distinct ints."""
    try:
        values = list(labels)
    except TypeError:
        values = None
    if (
        not values
        or any(
            not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < 0
            for v in values
        )
        or len(set(values)) != len(values)
        or (num_classes is not None and max(values) >= num_classes)
    ):
        limit = "" if num_classes is None else f" below {num_classes}"
        raise ValueError(
            "`labels` must be a non-empty list of distinct channel indices "
            f"(integers >= 0{limit}). Received: labels={labels!r}"
        )
    return sorted(int(v) for v in values)


@keras.saving.register_keras_serializable(package="synthlayers")
def dice_loss(
    y_true,
    y_pred,
    label_weights=None,
    include_background=True,
    smooth=1e-5,
    squared=True,
    ignore_absent_labels=False,
    labels=None,
):
    """Soft Dice loss per sample: one minus the (weighted) mean label Dice.

    `1 - sum_k w_k D_k / sum_k w_k` with `D_k` from `dice_scores` (SynthSeg's
    `DiceLoss`: `squared=True`, equal weights, background included); with
    `ignore_absent_labels=True` the sums run over the labels present in the
    sample's target only (0 if none is); with `labels`, over those channels
    only. See `DiceLoss` for the arguments.

    Returns:
        `(batch,)` float32 losses in `[0, 1]`.

    Example:

    >>> import numpy as np
    >>> labels = np.array([0, 1, 1, 2]).reshape(1, 2, 2, 1)
    >>> np.asarray(dice_loss(labels, np.eye(3)[labels[..., 0]])).round(4).tolist()
    [0.0]
    """
    weights = _check_dice_arguments(
        label_weights, include_background, smooth, ignore_absent_labels
    )
    scores = dice_scores(y_true, y_pred, smooth=smooth, squared=squared)
    num_classes = scores.shape[-1]
    if weights is None:
        weights = [1.0] * num_classes
    if len(weights) != num_classes:
        raise ValueError(
            f"`label_weights` must have one entry per label ({num_classes}). "
            f"Received: label_weights={label_weights!r}"
        )
    if not include_background:
        if num_classes < 2:
            raise ValueError(
                "`include_background=False` needs at least 2 labels (label 0 is "
                f"the background). Received: y_pred.shape={tuple(y_pred.shape)}"
            )
        weights = [0.0] + list(weights[1:])
    if labels is not None:
        chosen = _check_labels(labels, num_classes)
        weights = [w if k in chosen else 0.0 for k, w in enumerate(weights)]
        if sum(weights) <= 0:
            raise ValueError(
                "`labels` must select at least one label of positive weight "
                "(the background only with include_background=True). "
                f"Received: labels={labels!r}"
            )
    weights = ops.convert_to_tensor([w / sum(weights) for w in weights], "float32")
    if not ignore_absent_labels:
        return 1.0 - ops.sum(scores * weights, axis=-1)
    target = one_hot_targets(ops.convert_to_tensor(y_true), num_classes)
    axes = tuple(range(1, len(target.shape) - 1))
    present = ops.cast(ops.sum(target, axis=axes) > 0, "float32")
    weights = weights * present  # (batch, K)
    total = ops.sum(weights, axis=-1)
    mean = ops.sum(scores * weights, axis=-1) / ops.maximum(total, 1e-12)
    return ops.where(total > 0, 1.0 - mean, 0.0)


@keras.saving.register_keras_serializable(package="synthlayers")
def cross_entropy(y_true, y_pred, epsilon=1e-7):
    """Categorical cross-entropy per sample, averaged over its voxels.

    `mean_x -sum_k g_k(x) log p_k(x)`, with `p` clipped to
    `[epsilon, 1]`; a voxel whose integer label lies outside `0..K-1`
    counts 0. The voxel-wise term of nnU-Net's Dice + cross-entropy loss.

    Args:
        y_true: integer labels `(batch, *spatial, 1)` in `0..K-1`, or one-hot
            `(batch, *spatial, K)`.
        y_pred: probabilities `(batch, *spatial, K)`.
        epsilon: lower clip of the probabilities, in (0, 1). Defaults to
            `1e-7`.

    Returns:
        `(batch,)` float32 losses, >= 0.

    Example:

    >>> import numpy as np
    >>> labels = np.array([0, 1]).reshape(1, 2, 1, 1)
    >>> probabilities = np.array([[0.5, 0.5], [0.0, 1.0]]).reshape(1, 2, 1, 2)
    >>> round(float(np.asarray(cross_entropy(labels, probabilities))[0]), 4)
    0.3466
    """
    if not _is_number(epsilon) or not 0 < epsilon < 1:
        raise ValueError(
            f"`epsilon` must be a number in (0, 1). Received: epsilon={epsilon!r}"
        )
    y_pred = ops.cast(ops.convert_to_tensor(y_pred), "float32")
    y_true = ops.convert_to_tensor(y_true)
    _check_ranks(y_true, y_pred)
    target = one_hot_targets(y_true, y_pred.shape[-1])
    log_p = ops.log(ops.clip(y_pred, epsilon, 1.0))
    axes = tuple(range(1, len(y_pred.shape) - 1))
    return -ops.mean(ops.sum(target * log_p, axis=-1), axis=axes)


@keras.saving.register_keras_serializable(package="synthlayers")
class DiceLoss(keras.losses.Loss):
    """Soft Dice loss over the target labels (SynthSeg's training loss).

    For each sample, the soft Dice score of every label (see `dice_scores`)
    is averaged over the labels, optionally weighted and without the
    background (label 0), and the loss is one minus that mean. A perfect
    prediction gives 0, a prediction disjoint from the target gives 1 (up
    to `smooth`). Targets may be integer labels in `0..K-1` or one-hot.

    SynthSeg's `DiceLoss` is `squared=True` with a tiny `smooth` (Keras's
    epsilon, 1e-7); it also renormalises the inputs to sum to 1 over the
    channels, which this loss leaves to the caller (softmax outputs already
    do).

    Reference:
        - [Billot et al., SynthSeg: Segmentation of brain MRI scans of any
          contrast and resolution without retraining, Medical Image Analysis
          2023](https://doi.org/10.1016/j.media.2023.102789)

    Args:
        label_weights: one non-negative weight per label (`K` entries) for
            the mean over labels; `None` weighs labels equally. Defaults to
            `None`.
        include_background: include label 0 in the mean. Defaults to `True`
            (SynthSeg).
        smooth: added to numerator and denominator of each score (>= 0).
            Defaults to `1e-5`.
        squared: square the terms of the denominator (SynthSeg, V-Net).
            Defaults to `True`.
        ignore_absent_labels: average over the labels present in each
            sample's target only (a sample with none gives 0). For 2D
            slices of 3D label maps, where most labels are absent from a
            slice: an absent label scores about 0 until the network drives
            its probabilities below `smooth` everywhere, and a network that
            gets there has learned to suppress small structures. Defaults
            to `False` (SynthSeg, which trains in 3D, where every label is
            present).
        cross_entropy_weight: weight of a voxel-wise cross-entropy added to
            the Dice loss (`cross_entropy`; nnU-Net's Dice + cross-entropy
            with 1). Its gradient reaches every voxel, also where the Dice of
            a small structure is flat. Defaults to `0.0` (Dice only,
            SynthSeg).
        labels: channel indices to average over (a label subset, e.g. the
            structures whose overlap a registration should optimise); the
            others weigh 0. Defaults to `None`: all channels.
        reduction: Keras loss reduction over the batch. Defaults to
            `"sum_over_batch_size"`.
        name: name of the loss. Defaults to `"dice_loss"`.
        dtype: dtype of the computation. Defaults to `None` (float32).

    Call arguments:
        y_true: integer labels `(batch, *spatial, 1)` or one-hot
            `(batch, *spatial, K)`.
        y_pred: probabilities `(batch, *spatial, K)`.
        sample_weight: optional `(batch,)` weights.

    Example:

    >>> import numpy as np
    >>> labels = np.array([0, 1, 1, 2]).reshape(1, 2, 2, 1)
    >>> loss = DiceLoss(include_background=False)
    >>> float(loss(labels, np.eye(3)[labels[..., 0]]))
    0.0
    """

    def __init__(
        self,
        label_weights=None,
        include_background=True,
        smooth=1e-5,
        squared=True,
        ignore_absent_labels=False,
        cross_entropy_weight=0.0,
        labels=None,
        reduction="sum_over_batch_size",
        name="dice_loss",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        weights = _check_dice_arguments(
            label_weights, include_background, smooth, ignore_absent_labels
        )
        self.labels = None if labels is None else _check_labels(labels)
        self.label_weights = weights
        self.include_background = include_background
        self.smooth = float(smooth)
        self.squared = bool(squared)
        self.ignore_absent_labels = ignore_absent_labels
        if not _is_number(cross_entropy_weight) or cross_entropy_weight < 0:
            raise ValueError(
                "`cross_entropy_weight` must be a number >= 0. Received: "
                f"cross_entropy_weight={cross_entropy_weight!r}"
            )
        self.cross_entropy_weight = float(cross_entropy_weight)

    def call(self, y_true, y_pred):
        if self.cross_entropy_weight:  # one-hot once, for both terms
            y_true = one_hot_targets(y_true, y_pred.shape[-1])
        loss = dice_loss(
            y_true,
            y_pred,
            label_weights=self.label_weights,
            include_background=self.include_background,
            smooth=self.smooth,
            squared=self.squared,
            ignore_absent_labels=self.ignore_absent_labels,
            labels=self.labels,
        )
        if self.cross_entropy_weight:
            loss = loss + self.cross_entropy_weight * cross_entropy(y_true, y_pred)
        return loss

    def get_config(self):
        config = super().get_config()
        config.update(
            label_weights=self.label_weights,
            include_background=self.include_background,
            smooth=self.smooth,
            squared=self.squared,
            ignore_absent_labels=self.ignore_absent_labels,
            cross_entropy_weight=self.cross_entropy_weight,
            labels=self.labels,
        )
        return config


@keras.saving.register_keras_serializable(package="synthlayers")
def weighted_l2_loss(y_true, y_pred, target_value=5.0):
    """SynthSeg's weighted-L2 loss per sample (see `WeightedL2Loss`).

    `sum(m * (y_pred - target_value * (2 * g - 1)) ** 2) / (K * sum(m) + eps)`
    over space and labels, with `g` the one-hot target, `m = 1 - g[..., 0]`
    the non-background mask and `eps` Keras's epsilon.

    Returns:
        `(batch,)` float32 losses.

    Example:

    >>> import numpy as np
    >>> labels = np.array([0, 1, 1, 2]).reshape(1, 2, 2, 1)
    >>> scores = 5.0 * (2 * np.eye(3)[labels[..., 0]] - 1)
    >>> np.asarray(weighted_l2_loss(labels, scores)).round(4).tolist()
    [0.0]
    """
    if not _is_number(target_value) or target_value <= 0:
        raise ValueError(
            "`target_value` must be a positive number. Received: "
            f"target_value={target_value!r}"
        )
    y_pred = ops.cast(ops.convert_to_tensor(y_pred), "float32")
    y_true = ops.convert_to_tensor(y_true)
    _check_ranks(y_true, y_pred)
    num_classes = y_pred.shape[-1]
    target = one_hot_targets(y_true, num_classes)
    mask = 1.0 - target[..., :1]
    axes = tuple(range(1, len(y_pred.shape)))
    error = ops.square(y_pred - target_value * (2.0 * target - 1.0))
    top = ops.sum(mask * error, axis=axes)
    bottom = ops.sum(mask, axis=axes) * num_classes + keras.config.epsilon()
    return top / bottom


@keras.saving.register_keras_serializable(package="synthlayers")
class WeightedL2Loss(keras.losses.Loss):
    """SynthSeg's weighted-L2 warm-up loss on the scores before the softmax.

    SynthSeg trains its U-Net for a few epochs (`wl2_epochs`, 1 by default)
    with this loss before switching to Dice: the output of the last
    convolution, before the softmax, is pulled towards `+target_value` in
    the channel of the target label and `-target_value` in the others, by
    mean squared error over the voxels that are not background in the
    target:

    `sum(m * (y_pred - target_value * (2 * g - 1)) ** 2) / (K * sum(m) + eps)`

    with `g` the one-hot target, `m = 1 - g[..., 0]` (label 0 is the
    background, whose voxels do not count), `K` the number of labels and
    `eps` Keras's epsilon, sums over space and labels. This is
    `ext/lab2im/layers.py: WeightedL2Loss` of SynthSeg (`target_value=5`
    in `metrics_model`). SynthSeg sums over the whole batch (it trains with
    batches of 1); here each sample gets its own value and Keras averages
    them. A sample with no foreground gives 0.

    Use it on the scores before the softmax: for a network from
    `synthlayers.models.unet`,
    `keras.Model(net.input, net.get_layer("unet_likelihood").output)`
    shares the weights of `net`.

    Reference:
        - [Billot et al., SynthSeg: Segmentation of brain MRI scans of any
          contrast and resolution without retraining, Medical Image Analysis
          2023](https://doi.org/10.1016/j.media.2023.102789)

    Args:
        target_value: the score targeted for the true label (its negative
            for the others), > 0. Defaults to `5.0` (SynthSeg).
        reduction: Keras loss reduction over the batch. Defaults to
            `"sum_over_batch_size"`.
        name: name of the loss. Defaults to `"weighted_l2_loss"`.
        dtype: dtype of the computation. Defaults to `None` (float32).

    Call arguments:
        y_true: integer labels `(batch, *spatial, 1)` in `0..K-1`, or one-hot
            `(batch, *spatial, K)`; label 0 is the background.
        y_pred: scores before the softmax, `(batch, *spatial, K)`.
        sample_weight: optional `(batch,)` weights.

    Example:

    >>> import numpy as np
    >>> labels = np.array([0, 1, 1, 2]).reshape(1, 2, 2, 1)
    >>> float(WeightedL2Loss()(labels, np.zeros((1, 2, 2, 3))))
    25.0
    """

    def __init__(
        self,
        target_value=5.0,
        reduction="sum_over_batch_size",
        name="weighted_l2_loss",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if not _is_number(target_value) or target_value <= 0:
            raise ValueError(
                "`target_value` must be a positive number. Received: "
                f"target_value={target_value!r}"
            )
        self.target_value = float(target_value)

    def call(self, y_true, y_pred):
        return weighted_l2_loss(y_true, y_pred, target_value=self.target_value)

    def get_config(self):
        config = super().get_config()
        config["target_value"] = self.target_value
        return config


# --- registration ------------------------------------------------------------


def _check_same_shape(y_true, y_pred):
    if tuple(y_true.shape) != tuple(y_pred.shape) or len(y_pred.shape) not in (4, 5):
        raise ValueError(
            "Expected y_true and y_pred of the same shape (batch, *spatial, "
            "channels) with 2 or 3 spatial axes. Received: "
            f"y_true.shape={tuple(y_true.shape)}, y_pred.shape={tuple(y_pred.shape)}"
        )


def _check_penalty(penalty):
    if penalty not in ("l1", "l2"):
        raise ValueError(
            f"`penalty` must be 'l1' or 'l2'. Received: penalty={penalty!r}"
        )
    return penalty


@keras.saving.register_keras_serializable(package="synthlayers")
def gradient_penalty(displacement, penalty="l2"):
    """Smoothness penalty of a displacement field per sample (VoxelMorph's `Grad`).

    Forward differences `u[x + e_d] - u[x]` along each spatial axis `d`,
    squared (`"l2"`) or absolute (`"l1"`), averaged over the voxels and
    components for each axis, then averaged over the axes:
    `mean_d mean_{x, i} (d_d u_i)(x) ** 2`. This is VoxelMorph's
    `Grad(penalty, loss_mult=None)` (TensorFlow) and neurite's
    `spatial_gradient` (PyTorch), which SynthMorph weighs by 1 on the
    full-resolution displacement.

    Args:
        displacement: `(batch, *spatial, ndim)` field (voxels).
        penalty: `"l2"` or `"l1"`. Defaults to `"l2"`.

    Returns:
        `(batch,)` float32 penalties, >= 0.

    Example:

    >>> import numpy as np
    >>> field = np.zeros((1, 4, 4, 2), "float32")
    >>> field[:, :, :, 0] = np.arange(4)  # u_0 grows by 1 along axis 0
    >>> np.asarray(gradient_penalty(field)).tolist()  # (1/2 + 0) / 2
    [0.25]
    """
    _check_penalty(penalty)
    u = ops.cast(ops.convert_to_tensor(displacement), "float32")
    ndim = len(u.shape) - 2
    if ndim < 1:
        raise ValueError(
            "Expected `displacement` of shape (batch, *spatial, ndim). "
            f"Received: displacement.shape={tuple(u.shape)}"
        )
    terms = []
    for axis in range(1, ndim + 1):
        size = u.shape[axis]
        if size is not None and size < 2:
            terms.append(ops.zeros_like(u[:, 0, ...][..., 0]))
            continue
        upper = [slice(None)] * len(u.shape)
        lower = [slice(None)] * len(u.shape)
        upper[axis] = slice(1, None)
        lower[axis] = slice(None, -1)
        difference = u[tuple(upper)] - u[tuple(lower)]
        values = ops.square(difference) if penalty == "l2" else ops.abs(difference)
        terms.append(ops.mean(values, axis=tuple(range(1, ndim + 2))))
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total / ndim


@keras.saving.register_keras_serializable(package="synthlayers")
class GradientLoss(keras.losses.Loss):
    """L2 (or L1) gradient penalty of a displacement field; `y_true` is ignored.

    `gradient_penalty(y_pred)`: VoxelMorph's `Grad("l2")` regulariser, the
    mean squared forward difference of the field along each axis, averaged
    over the axes. SynthMorph adds it with weight 1 to the label Dice,
    computed on the full-resolution displacement (not on the half-resolution
    velocity field).

    Args:
        penalty: `"l2"` or `"l1"`. Defaults to `"l2"`.
        reduction: Keras loss reduction over the batch. Defaults to
            `"sum_over_batch_size"`.
        name: name of the loss. Defaults to `"gradient_loss"`.
        dtype: dtype of the computation. Defaults to `None` (float32).

    Call arguments:
        y_true: ignored (give any tensor, e.g. `y_pred` itself).
        y_pred: displacement `(batch, *spatial, ndim)`.

    Example:

    >>> import numpy as np
    >>> field = np.zeros((1, 8, 8, 2), "float32")
    >>> float(GradientLoss()(field, field))
    0.0
    """

    def __init__(
        self,
        penalty="l2",
        reduction="sum_over_batch_size",
        name="gradient_loss",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.penalty = _check_penalty(penalty)

    def call(self, y_true, y_pred):
        return gradient_penalty(y_pred, penalty=self.penalty)

    def get_config(self):
        config = super().get_config()
        config["penalty"] = self.penalty
        return config


@keras.saving.register_keras_serializable(package="synthlayers")
def mean_squared_error(y_true, y_pred):
    """Mean squared intensity difference per sample, over voxels and channels.

    Returns:
        `(batch,)` float32 values.

    Example:

    >>> import numpy as np
    >>> a, b = np.zeros((1, 2, 2, 1)), np.ones((1, 2, 2, 1))
    >>> np.asarray(mean_squared_error(a, b)).tolist()
    [1.0]
    """
    y_true = ops.cast(ops.convert_to_tensor(y_true), "float32")
    y_pred = ops.cast(ops.convert_to_tensor(y_pred), "float32")
    _check_same_shape(y_true, y_pred)
    return ops.mean(
        ops.square(y_true - y_pred), axis=tuple(range(1, len(y_pred.shape)))
    )


@keras.saving.register_keras_serializable(package="synthlayers")
class MeanSquaredErrorLoss(keras.losses.Loss):
    """Mean squared intensity difference, for registering images of one contrast.

    `mean((fixed - moved) ** 2)` over voxels and channels, per sample
    (VoxelMorph's `MSE`). Only meaningful when moving and fixed images share
    their contrast and intensity scale.

    Args:
        reduction: Keras loss reduction over the batch. Defaults to
            `"sum_over_batch_size"`.
        name: name of the loss. Defaults to `"mean_squared_error_loss"`.
        dtype: dtype of the computation. Defaults to `None` (float32).

    Call arguments:
        y_true: the fixed images `(batch, *spatial, channels)`.
        y_pred: the moved images, same shape.

    Example:

    >>> import numpy as np
    >>> float(MeanSquaredErrorLoss()(np.zeros((1, 4, 4, 1)), np.ones((1, 4, 4, 1))))
    1.0
    """

    def __init__(
        self,
        reduction="sum_over_batch_size",
        name="mean_squared_error_loss",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        return mean_squared_error(y_true, y_pred)


def _check_window(window, ndim=None):
    entries = window if isinstance(window, (list, tuple)) else [window]
    valid = bool(entries) and all(
        isinstance(w, numbers.Integral) and not isinstance(w, bool) and w >= 1
        for w in entries
    )
    if valid and ndim is not None and len(entries) not in (1, ndim):
        valid = False
    if not valid:
        expected = "" if ndim is None else f" or a list of {ndim}"
        raise ValueError(
            f"`window` must be a positive integer{expected} (one per spatial "
            f"axis). Received: window={window!r}"
        )
    if ndim is None:
        return window if isinstance(window, int) else [int(w) for w in entries]
    return [int(entries[0])] * ndim if len(entries) == 1 else [int(w) for w in entries]


def _box_sums(x, window):
    """Sums over a centred box (zeros outside), separable, per channel.

    `x` is `(batch, *spatial, channels)`; the box is `window[d]` voxels along
    axis `d`, centred like a `"same"` convolution (for an even width, one
    more voxel after the centre than before).
    """
    ndim = len(x.shape) - 2
    channels = x.shape[-1]
    spatial = tuple(x.shape[1:-1])
    # Channels into the batch: one single-channel convolution per axis.
    perm = (0, ndim + 1, *range(1, ndim + 1))
    y = ops.reshape(ops.transpose(x, perm), (-1, *spatial, 1))
    for axis, width in enumerate(window):
        if width == 1:
            continue
        shape = [1] * ndim
        shape[axis] = width
        kernel = ops.ones((*shape, 1, 1), dtype=y.dtype)
        y = ops.conv(y, kernel, strides=1, padding="same")
    y = ops.reshape(y, (-1, channels, *spatial))
    return ops.transpose(y, (0, *range(2, ndim + 2), 1))


@keras.saving.register_keras_serializable(package="synthlayers")
def local_ncc(y_true, y_pred, window=9, epsilon=1e-5):
    """Local squared normalised cross-correlation per sample (VoxelMorph's `NCC`).

    In a `window`-wide box around each voxel (sums with zeros outside the
    image, as a `"same"` convolution), with `n` the box size:
    `cc = cross ** 2 / (var_t * var_p + epsilon)` where
    `cross = sum(t p) - sum(t) sum(p) / n`, `var_t = sum(t^2) - sum(t)^2 / n`
    (likewise `var_p`), averaged over voxels and channels. In `[0, 1]`
    (1: locally linearly related intensities). VoxelMorph's TensorFlow
    `NCC(win=9, eps=1e-5)` returns `-cc`; neurite's PyTorch `ncc` returns
    `cc`. Computed in float32.

    Args:
        y_true: `(batch, *spatial, channels)`, e.g. the fixed images.
        y_pred: the same shape, e.g. the moved images.
        window: box width in voxels, an integer or one per spatial axis.
            Defaults to `9`.
        epsilon: added to the denominator. Defaults to `1e-5`.

    Returns:
        `(batch,)` float32 values.

    Example:

    >>> import numpy as np
    >>> image = np.random.default_rng(0).random((1, 16, 16, 1))
    >>> np.asarray(local_ncc(image, 2 * image)).round(4).tolist()
    [1.0]
    """
    y_true = ops.cast(ops.convert_to_tensor(y_true), "float32")
    y_pred = ops.cast(ops.convert_to_tensor(y_pred), "float32")
    _check_same_shape(y_true, y_pred)
    ndim = len(y_pred.shape) - 2
    window = _check_window(window, ndim)
    if not _is_number(epsilon) or epsilon < 0:
        raise ValueError(
            f"`epsilon` must be a number >= 0. Received: epsilon={epsilon!r}"
        )
    channels = y_pred.shape[-1]
    moments = ops.concatenate(
        [y_true, y_pred, y_true * y_true, y_pred * y_pred, y_true * y_pred], axis=-1
    )
    sums = _box_sums(moments, window)
    t, p, tt, pp, tp = (sums[..., i * channels : (i + 1) * channels] for i in range(5))
    size = float(np.prod(window))
    cross = tp - t * p / size
    var_t = tt - t * t / size
    var_p = pp - p * p / size
    cc = cross * cross / (var_t * var_p + epsilon)
    return ops.mean(cc, axis=tuple(range(1, ndim + 2)))


@keras.saving.register_keras_serializable(package="synthlayers")
class LocalNCCLoss(keras.losses.Loss):
    """Negative local normalised cross-correlation (VoxelMorph's `NCC` loss).

    `-local_ncc(fixed, moved, window)`: VoxelMorph's TensorFlow
    `NCC(win=9).loss`, between -1 (perfect local linear agreement) and 0.
    For images of one contrast (or contrasts related linearly within a few
    voxels); SynthMorph's contrast-agnostic training uses the label Dice
    instead.

    Args:
        window: box width in voxels, an integer or one per spatial axis.
            Defaults to `9` (VoxelMorph).
        epsilon: added to the denominator. Defaults to `1e-5` (VoxelMorph).
        reduction: Keras loss reduction over the batch. Defaults to
            `"sum_over_batch_size"`.
        name: name of the loss. Defaults to `"local_ncc_loss"`.
        dtype: dtype of the computation. Defaults to `None` (float32).

    Call arguments:
        y_true: the fixed images `(batch, *spatial, channels)`.
        y_pred: the moved images, same shape.

    Example:

    >>> import numpy as np
    >>> image = np.random.default_rng(0).random((1, 16, 16, 1))
    >>> round(float(LocalNCCLoss()(image, image)), 3)
    -1.0
    """

    def __init__(
        self,
        window=9,
        epsilon=1e-5,
        reduction="sum_over_batch_size",
        name="local_ncc_loss",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.window = _check_window(window)
        if not _is_number(epsilon) or epsilon < 0:
            raise ValueError(
                f"`epsilon` must be a number >= 0. Received: epsilon={epsilon!r}"
            )
        self.epsilon = float(epsilon)

    def call(self, y_true, y_pred):
        return -local_ncc(y_true, y_pred, window=self.window, epsilon=self.epsilon)

    def get_config(self):
        config = super().get_config()
        config.update(window=self.window, epsilon=self.epsilon)
        return config
