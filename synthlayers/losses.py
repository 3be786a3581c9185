"""Segmentation losses: soft Dice, cross-entropy, SynthSeg's weighted-L2 warm-up.

Targets (`y_true`) are either integer labels `(batch, *spatial, 1)` with
values in `0..num_classes-1` (any other value belongs to no class) or one-hot
(or probabilistic) maps `(batch, *spatial, num_classes)`; predictions
(`y_pred`) are `(batch, *spatial, num_classes)`. Keras casts `y_true` to
float before a `Loss` sees it, so the two are told apart by their number of
channels: one channel against several predicted classes means labels. Each
loss returns one value per sample, which Keras averages over the batch
(`reduction="sum_over_batch_size"`, with `sample_weight` if given).
"""

import numbers

import keras
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


@keras.saving.register_keras_serializable(package="synthlayers")
def dice_loss(
    y_true,
    y_pred,
    label_weights=None,
    include_background=True,
    smooth=1e-5,
    squared=True,
    ignore_absent_labels=False,
):
    """Soft Dice loss per sample: one minus the (weighted) mean label Dice.

    `1 - sum_k w_k D_k / sum_k w_k` with `D_k` from `dice_scores` (SynthSeg's
    `DiceLoss`: `squared=True`, equal weights, background included); with
    `ignore_absent_labels=True` the sums run over the labels present in the
    sample's target only (0 if none is). See `DiceLoss` for the arguments.

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
        reduction="sum_over_batch_size",
        name="dice_loss",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        weights = _check_dice_arguments(
            label_weights, include_background, smooth, ignore_absent_labels
        )
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
