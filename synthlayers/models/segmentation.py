"""End-to-end segmentation training on synthetic images (SynthSeg)."""

import contextlib

import keras

from synthlayers.layers.base import is_integer_dtype
from synthlayers.layers.labels_to_image import LabelsToImage
from synthlayers.losses import DiceLoss

IMAGES = "images"
MASKS = "segmentation_masks"
PREDICTIONS = "predictions"


def _target_classes(generator):
    """`(one_hot, count)` of a `LabelsToImage`'s targets, or None if unknown.

    `count` is the number of one-hot channels, or the largest integer target
    plus one.
    """
    if not isinstance(generator, LabelsToImage):
        return None
    return generator.one_hot, generator.num_targets


# Replica seeds -------------------------------------------------------------
#
# Under `tf.distribute` (e.g. `MirroredStrategy`) every replica runs the
# training step on its part of the global batch, with its own copy of every
# `keras.random.SeedGenerator` state, and the copies hold the same value:
# all replicas would draw the same random numbers (deformations, contrasts,
# noise, dropout masks), so N devices would train on one device's worth of
# random variety. JAX's `keras.distribution.DataParallel` runs one program on
# the global batch (the draws have the global batch's shape and the sharding
# splits them), so it needs nothing. See docs/data_parallel.md.

REPLICA_SEED_STRIDE = 1_000_003
"""Seed offset between consecutive `tf.distribute` replicas (a prime far
larger than the per-component offsets of `LabelsToImage`)."""


def _replica_index():
    """This replica's index when `tf.distribute` runs several, else None.

    Keras has no public API for the replica of a `tf.distribute` strategy,
    so this one place asks TensorFlow (only on its backend).
    """
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return None
    return context.replica_id_in_sync_group


def seed_generators(layer):
    """The `keras.random.SeedGenerator`s of `layer` and its sublayers, once each."""
    found, seen = [], set()

    def visit(value):
        if id(value) in seen:
            return
        seen.add(id(value))
        if isinstance(value, keras.random.SeedGenerator):
            found.append(value)
        elif isinstance(value, keras.layers.Layer):
            for attribute in vars(value).values():
                visit(attribute)
        elif isinstance(value, (list, tuple)):
            for item in value:
                visit(item)
        elif isinstance(value, dict):
            for item in value.values():
                visit(item)

    visit(layer)
    return found


@contextlib.contextmanager
def replica_seeds(layer):
    """Inside, each `tf.distribute` replica draws its own random numbers.

    Adds `replica index x REPLICA_SEED_STRIDE` to the seed (first element of
    the state) of every `SeedGenerator` of `layer` on entry and takes it off
    on exit, so replica `r` draws from seeds `seed + r x stride` and the
    replicas' state copies stay equal (each replica updates its own copy:
    Keras creates the state with aggregation `"none"`). Reproducible: the
    offsets depend on the replica index only. Outside a `tf.distribute`
    replica context with several replicas (one device, JAX, PyTorch) it
    does nothing.

    Args:
        layer: the layer (or model) whose draws the block makes.
    """
    replica = _replica_index()
    if replica is None:
        yield
        return
    generators = seed_generators(layer)
    offsets = []
    for generator in generators:
        dtype = generator.state.dtype
        offset = keras.ops.cast(replica, dtype) * REPLICA_SEED_STRIDE
        offset = keras.ops.stack([offset, keras.ops.zeros_like(offset)])
        generator.state.assign(generator.state + offset)
        offsets.append(offset)
    try:
        yield
    finally:
        for generator, offset in zip(generators, offsets):
            generator.state.assign(generator.state - offset)


def _num_outputs(network):
    try:
        shape = network.output_shape
    except (AttributeError, ValueError, RuntimeError):
        return None
    if isinstance(shape, tuple) and shape and isinstance(shape[-1], int):
        return shape[-1]
    return None


@keras.saving.register_keras_serializable(package="synthlayers")
class SegmentationModel(keras.Model):
    """Train a segmentation network on images synthesised from label maps.

    SynthSeg's training in one Keras model: `fit` takes label maps and
    nothing else. Each step, `generator` (a `LabelsToImage`, e.g. from
    `LabelsToImage.synthseg(...)`) synthesises a random image and its
    target from every label map, `network` (e.g. `synthlayers.models.unet`)
    segments the image, and the loss compares its prediction with the
    generated target. The loss is the one given to `compile` (default:
    `DiceLoss()`, SynthSeg's) and compiled metrics see the same pair
    `(target, prediction)`.

    How: `call` returns a dict with the generated `"images"`, the generated
    targets `"segmentation_masks"` and the network's `"predictions"`; the
    overridden `compute_loss` and `compute_metrics` (public Keras 3 API,
    the same on TensorFlow, JAX and PyTorch) pass the targets as `y` and the
    predictions as `y_pred` to the compiled loss and metrics. `fit` and
    `evaluate` therefore take only `x` (label maps, or a dataset yielding
    them); a `y` is an error.

    Targets: the network's output channel `k` is target label `k`, so the
    generator must return integer targets in `0..K-1` (give
    `output_labels` as a `{label: index}` dict, e.g.
    `{0: 0, 2: 1, 41: 2}`) or one-hot targets with `K` channels
    (`one_hot=True`). For a `LabelsToImage` this is checked when the model
    is made.

    Data-parallel training (`keras.distribution.DataParallel` under JAX,
    `tf.distribute.MirroredStrategy` under TensorFlow; see
    docs/data_parallel.md): build and compile the model in the
    distribution's scope; the batch size of `fit` is the global batch.
    Every replica synthesises different images: under JAX the draws are
    made for the global batch and split with it, under TensorFlow `call`
    offsets each replica's seeds (`replica_seeds`). Label maps of a float
    dtype are rounded to int32 (Keras's build pass under `tf.distribute`
    hands the model such a batch).

    `training=False` (as in `predict` and `evaluate`) makes the generator
    deterministic (centred crop, central contrast) and runs the network in
    inference mode. For inference on real images use the network alone,
    `model.network` (save or export it on its own).

    Reference:
        - [Billot et al., SynthSeg: Segmentation of brain MRI scans of any
          contrast and resolution without retraining, Medical Image Analysis
          2023](https://doi.org/10.1016/j.media.2023.102789)

    Args:
        generator: a layer mapping label maps to a dict with `"images"` and
            `"segmentation_masks"` (a `LabelsToImage`).
        network: a model or layer mapping images to per-voxel class
            probabilities `(batch, *spatial, K)` (e.g. from `unet`).
        **kwargs: base model arguments such as `name`.

    Call arguments:
        label_maps: integer label maps `(batch, *spatial, 1)`.
        training: synthesise randomly and train the network's layers (e.g.
            batch statistics). Defaults to `False` when called directly;
            `fit` passes `True`.

    Input shape:
        `(batch, *spatial, 1)` integers, 2 or 3 spatial axes.

    Output shape:
        A dict: `"images"` `(batch, *output_spatial, channels)`,
        `"segmentation_masks"` the generator's targets and `"predictions"`
        `(batch, *output_spatial, K)`.

    Example:

    >>> import keras
    >>> import numpy as np
    >>> from synthlayers.layers import LabelsToImage
    >>> from synthlayers.models import SegmentationModel, unet
    >>> label_maps = np.zeros((4, 32, 32, 1), "int32")
    >>> label_maps[:, 8:24, 8:24] = 2
    >>> label_maps[:, 12:20, 12:20] = 41
    >>> generator = LabelsToImage(
    ...     [0, 2, 41], output_labels={0: 0, 2: 1, 41: 2}, rotation=10, seed=0
    ... )
    >>> network = unet((32, 32, 1), num_classes=3, levels=3, features=8)
    >>> model = SegmentationModel(generator, network)
    >>> model.compile(optimizer=keras.optimizers.Adam(1e-3))
    >>> history = model.fit(label_maps, batch_size=2, epochs=2, verbose=0)
    >>> model.network.predict(np.zeros((1, 32, 32, 1)), verbose=0).shape
    (1, 32, 32, 3)
    """

    def __init__(self, generator, network, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(generator, keras.layers.Layer):
            raise ValueError(
                "`generator` must be a Keras layer returning a dict with "
                f"'{IMAGES}' and '{MASKS}' (a LabelsToImage). "
                f"Received: generator={generator!r}"
            )
        if not isinstance(network, keras.layers.Layer):
            raise ValueError(
                "`network` must be a Keras model or layer mapping images to class "
                f"probabilities. Received: network={network!r}"
            )
        targets = _target_classes(generator)
        num_outputs = _num_outputs(network)
        if targets is not None and num_outputs is not None:
            one_hot, count = targets
            if (one_hot and count != num_outputs) or (
                not one_hot and count > num_outputs
            ):
                kind = (
                    f"{count} one-hot target channels"
                    if one_hot
                    else f"integer targets up to {count - 1}"
                )
                raise ValueError(
                    f"The generator gives {kind} but the network predicts "
                    f"{num_outputs} classes: the network's output channel k must be "
                    "target label k. Give the generator `output_labels` as a "
                    "{label: index} dict with indices 0..K-1 (or one_hot=True) "
                    f"and the network K outputs. Received: generator target_labels="
                    f"{generator.target_labels!r}, network "
                    f"output shape={network.output_shape!r}"
                )
        self.generator = generator
        self.network = network

    def build(self, input_shape):
        if not self.network.built:
            spec = self.generator.compute_output_spec(
                keras.KerasTensor(tuple(input_shape), "int32")
            )
            self.network.build(tuple(spec[IMAGES].shape))
        self.built = True

    def call(self, label_maps, training=False):
        training = bool(training)
        if training:
            with replica_seeds(self):
                return self._forward(label_maps, training)
        return self._forward(label_maps, training)

    def _forward(self, label_maps, training):
        if not is_integer_dtype(label_maps.dtype):
            # Under `tf.distribute`, `fit` builds the model on the replicas'
            # batches averaged into floats: label values, rounded.
            label_maps = keras.ops.cast(keras.ops.round(label_maps), "int32")
        generated = self.generator(label_maps, training=training)
        if not isinstance(generated, dict) or not {IMAGES, MASKS} <= set(generated):
            received = (
                f"keys {sorted(generated)}"
                if isinstance(generated, dict)
                else type(generated).__name__
            )
            raise ValueError(
                f"The generator must return a dict with '{IMAGES}' and '{MASKS}'. "
                f"Received: {received}"
            )
        images = generated[IMAGES]
        predictions = self.network(images, training=training)
        return {IMAGES: images, MASKS: generated[MASKS], PREDICTIONS: predictions}

    def compile(self, optimizer="adam", loss=None, **kwargs):
        """Configure training; `loss=None` means `DiceLoss()` (SynthSeg's).

        Args:
            optimizer: as in `keras.Model.compile`. Defaults to `"adam"`
                (SynthSeg uses Adam with learning rate 1e-4).
            loss: a loss taking `(targets, predictions)`. Defaults to `None`:
                `DiceLoss()`. For 2D slices of 3D label maps use
                `DiceLoss(ignore_absent_labels=True)`: with the default, the
                labels a slice lacks push the network to suppress small
                structures.
            **kwargs: the other arguments of `keras.Model.compile` (metrics
                see `(targets, predictions)` too).
        """
        super().compile(
            optimizer=optimizer, loss=DiceLoss() if loss is None else loss, **kwargs
        )

    def compile_from_config(self, config):
        # Keras skips models with a custom `compile`; ours only fills in the
        # default loss, so the saved arguments go through it unchanged.
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if self.optimizer is not None and self.built:
            self.optimizer.build(self.trainable_variables)

    def _split(self, y, y_pred):
        if y is not None:
            raise ValueError(
                "SegmentationModel trains on the targets it generates: give `fit` "
                "and `evaluate` label maps only (x), no y. Received: a y of type "
                f"{type(y).__name__}"
            )
        return y_pred[MASKS], y_pred[PREDICTIONS]

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        targets, predictions = self._split(y, y_pred)
        return super().compute_loss(
            x, targets, predictions, sample_weight, training=training
        )

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        targets, predictions = self._split(y, y_pred)
        return super().compute_metrics(x, targets, predictions, sample_weight)

    def get_config(self):
        config = super().get_config()
        config.update(
            generator=keras.saving.serialize_keras_object(self.generator),
            network=keras.saving.serialize_keras_object(self.network),
        )
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        generator = keras.saving.deserialize_keras_object(
            config.pop("generator"), custom_objects=custom_objects
        )
        network = keras.saving.deserialize_keras_object(
            config.pop("network"), custom_objects=custom_objects
        )
        return cls(generator, network, **config)
