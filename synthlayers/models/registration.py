"""Deformable registration: a VoxelMorph network and SynthMorph training."""

import numbers

import keras
import numpy as np
from keras import ops

from synthlayers.layers.base import is_integer_dtype
from synthlayers.layers.labels_to_image_pair import FIXED_IMAGES
from synthlayers.layers.labels_to_image_pair import FIXED_MASKS
from synthlayers.layers.labels_to_image_pair import MOVING_IMAGES
from synthlayers.layers.labels_to_image_pair import MOVING_MASKS
from synthlayers.layers.spatial_transformer import IntegrateVelocity
from synthlayers.layers.spatial_transformer import SpatialTransformer
from synthlayers.losses import DiceLoss
from synthlayers.losses import GradientLoss
from synthlayers.losses import LocalNCCLoss
from synthlayers.models.segmentation import replica_seeds
from synthlayers.models.unet import SpatialShapeCheck
from synthlayers.models.unet import unet
from synthlayers.ops.resize import resize_displacement
from synthlayers.validation import check_choice
from synthlayers.validation import check_int
from synthlayers.validation import check_number
from synthlayers.validation import check_shape

MOVED_IMAGES = "moved_images"
MOVED_MASKS = "moved_segmentation_masks"
DISPLACEMENT = "displacement"
VELOCITY = "velocity"
MOVING_PROBABILITIES = "moving_probabilities"
FIXED_PROBABILITIES = "fixed_probabilities"
SIMILARITIES = ("labels", "images")
RESOLUTIONS = ("half", "full")
# voxelmorph's `train_synthmorph.py` defaults: 4 encoder and 6 decoder
# convolutions of 64 filters (the released models: 256).
ENCODER_CONVOLUTIONS = 4
DECODER_CONVOLUTIONS = 6
SEGMENTER_LEVELS = 4


@keras.saving.register_keras_serializable(package="synthlayers")
class ResizeDisplacement(keras.layers.Layer):
    """Resize a displacement field to a spatial shape, rescaling its vectors.

    Linear, corners aligned, component `d` multiplied by
    `(output_shape[d] - 1) / (input_shape[d] - 1)` so that the field keeps
    meaning the same deformation in voxels of the new grid
    (`synthlayers.ops.resize.resize_displacement`). VoxelMorph multiplies
    by `output_shape[d] / input_shape[d]` instead (docs/conventions.md).

    Args:
        output_shape: spatial output shape (2 or 3 integers).
        **kwargs: base layer arguments such as `name` and `dtype`.

    Call arguments:
        field: `(batch, *spatial, ndim)` displacements in voxels.

    Output shape:
        `(batch, *output_shape, ndim)`.

    Example:

    >>> import numpy as np
    >>> field = np.ones((1, 8, 8, 2), "float32")
    >>> out = ResizeDisplacement((15, 15))(field)
    >>> tuple(out.shape), float(np.asarray(out)[0, 0, 0, 0])
    ((1, 15, 15, 2), 2.0)
    """

    def __init__(self, output_shape, **kwargs):
        super().__init__(**kwargs)
        self.output_shape = check_shape(output_shape, "output_shape")
        self.built = True

    def _check(self, shape):
        ndim = len(shape) - 2
        if shape[-1] != ndim or ndim != len(self.output_shape):
            raise ValueError(
                "ResizeDisplacement expects a field of shape (batch, *spatial, "
                f"ndim) with {len(self.output_shape)} spatial axes (as "
                f"output_shape). Received: field.shape={tuple(shape)}"
            )

    def call(self, field):
        self._check(field.shape)
        out = resize_displacement(ops.cast(field, "float32"), self.output_shape)
        return ops.cast(out, self.compute_dtype)

    def compute_output_spec(self, field):
        self._check(field.shape)
        return keras.KerasTensor(
            (field.shape[0], *self.output_shape, field.shape[-1]), self.compute_dtype
        )

    def get_config(self):
        config = super().get_config()
        config["output_shape"] = list(self.output_shape)
        return config


def _features(features):
    """`features` -> (encoder list, decoder list)."""
    if isinstance(features, numbers.Integral) and not isinstance(features, bool):
        if features >= 1:
            return [int(features)] * ENCODER_CONVOLUTIONS, [
                int(features)
            ] * DECODER_CONVOLUTIONS
    elif isinstance(features, (list, tuple)) and len(features) == 2:
        encoder, decoder = features
        lists = (encoder, decoder)
        if all(
            isinstance(x, (list, tuple))
            and x
            and all(
                isinstance(f, numbers.Integral) and not isinstance(f, bool) and f >= 1
                for f in x
            )
            for x in lists
        ) and len(decoder) >= len(encoder):
            return [int(f) for f in encoder], [int(f) for f in decoder]
    raise ValueError(
        "`features` must be a positive integer (4 encoder and 6 decoder "
        "convolutions of that many filters) or a pair (encoder, decoder) of "
        "lists of positive integers, the decoder at least as long as the "
        f"encoder (VoxelMorph's nb_unet_features). Received: features={features!r}"
    )


def registration_network(
    input_shape,
    features=64,
    integration_steps=5,
    velocity_resolution="half",
    velocity_initializer=None,
    segmenter_classes=None,
    segmenter_features=16,
    name="registration_network",
):
    """Build VoxelMorph's network: images in, moved image and displacement out.

    VoxelMorph's `VxmDense` as SynthMorph trains it (`int_downsize=2`,
    `unet_half_res=True`): the moving and fixed images are concatenated
    along the channels and pass through a U-Net whose encoder has one
    convolution (3 voxels wide, LeakyReLU 0.2) and a max pooling by 2 per
    entry of `encoder`, and whose decoder has one convolution per level
    followed by a nearest-neighbour upsampling by 2 and a concatenation
    with the encoder's features of that level, then the extra decoder
    convolutions; with `velocity_resolution="half"` the last upsampling is
    skipped, so the network ends at half resolution. A last convolution
    (`f"{name}_velocity"`, weights drawn with standard deviation 1e-5 as
    VoxelMorph's) gives a stationary velocity field, integrated by
    `IntegrateVelocity(integration_steps)` on its grid, resized to the
    image grid with its vectors rescaled (`ResizeDisplacement`), and the
    moving image is warped with it (`SpatialTransformer`, linear).

    Displacement convention: `moved(x) = moving(x + displacement(x))`, in
    voxels of the fixed (= moving) grid, component `d` along array axis `d`
    (pull-back from the fixed grid, as `SpatialTransformer` and VoxelMorph).
    Its inverse is the integral of `-velocity`.

    With `segmenter_classes=K` (our addition, not VoxelMorph's), a
    segmentation U-Net (`unet`, 4 levels of `segmenter_features` filters
    doubling per level, batch normalisation, softmax over `K` classes,
    layer prefix `f"{name}_segmenter"`) is applied to the moving and the
    fixed image with shared weights, and the registration U-Net gets the
    two probability maps instead of the images. Trained with an auxiliary
    Dice on those maps (`RegistrationModel(segmentation_weight=...)`), the
    registration sees the anatomy rather than the contrast: in 30 CPU
    minutes of 2D training, raw images do not give a network that matches
    a real T1 to other contrasts (docs/results.md). The moved image is
    still the moving image warped.

    Reference:
        - [Balakrishnan et al., VoxelMorph: a learning framework for
          deformable medical image registration, IEEE TMI
          2019](https://doi.org/10.1109/TMI.2019.2897538)
        - [Dalca et al., Unsupervised learning of probabilistic
          diffeomorphic registration for images and surfaces, Medical Image
          Analysis 2019](https://doi.org/10.1016/j.media.2019.07.006)

    Args:
        input_shape: `(*spatial, channels)` of each image, 2 or 3 static
            spatial dimensions, each a multiple of `2 ** len(encoder)` (16
            by default).
        features: an integer `f` for VoxelMorph's default layout, 4 encoder
            and 6 decoder convolutions of `f` filters (64: the script's
            default, fits a CPU; 256: the released SynthMorph models), or a
            pair `(encoder, decoder)` of lists of filters. Defaults to `64`.
        integration_steps: squarings of the integration, 0 for a plain
            displacement. Defaults to `5` (SynthMorph).
        velocity_resolution: `"half"` (SynthMorph, VoxelMorph's
            `int_downsize=2`) or `"full"`. Defaults to `"half"`.
        velocity_initializer: initializer of the velocity convolution's
            kernel (its bias starts at 0); `"zeros"` makes the untrained
            network the identity exactly. Defaults to `None`:
            `RandomNormal(stddev=1e-5)` (VoxelMorph).
        segmenter_classes: `None` (VoxelMorph: the images go to the
            registration U-Net), or the number of classes of a segmenter
            front end: the number of target labels of the training pairs,
            background included. Defaults to `None`.
        segmenter_features: filters of the segmenter's first level.
            Defaults to `16`.
        name: name of the model and prefix of its layers. Defaults to
            `"registration_network"`.

    Returns:
        A functional `keras.Model` taking `[moving, fixed]` and returning a
        dict: `"moved_images"` `(batch, *spatial, channels)`,
        `"displacement"` `(batch, *spatial, ndim)` and `"velocity"`
        `(batch, *velocity_spatial, ndim)` (in voxels of its own grid);
        with a segmenter also `"moving_probabilities"` and
        `"fixed_probabilities"` `(batch, *spatial, segmenter_classes)`.

    Example:

    >>> import numpy as np
    >>> net = registration_network((32, 32, 1), features=8)
    >>> images = np.zeros((2, 32, 32, 1), "float32")
    >>> out = net.predict([images, images], verbose=0)
    >>> out["moved_images"].shape, out["displacement"].shape, out["velocity"].shape
    ((2, 32, 32, 1), (2, 32, 32, 2), (2, 16, 16, 2))
    """
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) not in (3, 4):
        raise ValueError(
            "`input_shape` must be (*spatial, channels) with 2 or 3 spatial "
            f"dimensions. Received: input_shape={input_shape!r}"
        )
    input_shape = check_shape(input_shape, "input_shape")
    encoder, decoder = _features(features)
    integration_steps = check_int(integration_steps, "integration_steps", min_value=0)
    check_choice(velocity_resolution, "velocity_resolution", RESOLUTIONS)
    if velocity_initializer is None:
        velocity_initializer = keras.initializers.RandomNormal(stddev=1e-5)
    if not isinstance(name, str) or not name:
        raise ValueError(f"`name` must be a non-empty string. Received: name={name!r}")
    if segmenter_classes is not None:
        segmenter_classes = check_int(segmenter_classes, "segmenter_classes", 2)
        segmenter_features = check_int(segmenter_features, "segmenter_features", 1)

    spatial = tuple(input_shape[:-1])
    ndim = len(spatial)
    levels = len(encoder)
    divisor = 2**levels
    if any(n % divisor for n in spatial):
        raise ValueError(
            f"The spatial dimensions of `input_shape` must be multiples of "
            f"{divisor} (2 ** the number of encoder convolutions); pad or crop "
            f"the images first. Received: input_shape={tuple(input_shape)}"
        )
    conv = {2: keras.layers.Conv2D, 3: keras.layers.Conv3D}[ndim]
    pool = {2: keras.layers.MaxPooling2D, 3: keras.layers.MaxPooling3D}[ndim]
    upsample = {2: keras.layers.UpSampling2D, 3: keras.layers.UpSampling3D}[ndim]

    def block(x, filters, label):
        x = conv(filters, 3, padding="same", name=f"{name}_conv_{label}")(x)
        return keras.layers.LeakyReLU(negative_slope=0.2, name=f"{name}_act_{label}")(x)

    moving = keras.Input(input_shape, name=f"{name}_moving")
    fixed = keras.Input(input_shape, name=f"{name}_fixed")
    pair = [moving, fixed]
    probabilities = {}
    if segmenter_classes is not None:
        segmenter = unet(
            (*(None,) * ndim, input_shape[-1]),
            segmenter_classes,
            levels=SEGMENTER_LEVELS,
            features=segmenter_features,
            name=f"{name}_segmenter",
        )
        pair = [segmenter(moving), segmenter(fixed)]
        probabilities = {MOVING_PROBABILITIES: pair[0], FIXED_PROBABILITIES: pair[1]}
    x = keras.layers.Concatenate(axis=-1, name=f"{name}_pair")(pair)
    x = SpatialShapeCheck(divisor, name=f"{name}_shape_check")(x)
    skips = []
    for level, filters in enumerate(encoder):
        x = block(x, filters, f"down_{level}")
        skips.append(x)
        x = pool(2, name=f"{name}_pool_{level}")(x)
    for level, filters in enumerate(decoder[:levels]):
        x = block(x, filters, f"up_{level}")
        if velocity_resolution == "full" or level < levels - 1:
            x = upsample(2, name=f"{name}_upsample_{level}")(x)
            x = keras.layers.Concatenate(axis=-1, name=f"{name}_merge_{level}")(
                [x, skips.pop()]
            )
    for index, filters in enumerate(decoder[levels:]):
        x = block(x, filters, f"extra_{index}")
    velocity = conv(
        ndim,
        3,
        padding="same",
        kernel_initializer=velocity_initializer,
        bias_initializer="zeros",
        name=f"{name}_velocity",
    )(x)
    displacement = velocity
    if integration_steps:
        displacement = IntegrateVelocity(
            steps=integration_steps, name=f"{name}_integrate"
        )(displacement)
    if velocity_resolution == "half":
        displacement = ResizeDisplacement(spatial, name=f"{name}_resize")(displacement)
    moved = SpatialTransformer(name=f"{name}_transformer")([moving, displacement])
    outputs = {MOVED_IMAGES: moved, DISPLACEMENT: displacement, VELOCITY: velocity}
    outputs.update(probabilities)
    return keras.Model([moving, fixed], outputs, name=name)


def _one_hot(masks, target_labels):
    """Integer label maps -> one-hot floats over `target_labels` (values)."""
    values = ops.convert_to_tensor(np.asarray(target_labels, "int32"))
    return ops.cast(ops.equal(ops.cast(masks, "int32"), values), "float32")


@keras.saving.register_keras_serializable(package="synthlayers")
class RegistrationModel(keras.Model):
    """Train a registration network on synthesised image pairs (SynthMorph).

    SynthMorph's training in one Keras model: `fit` takes label maps (or,
    with a generator of random label maps, only a number of steps). Each
    step, `generator` (a `LabelsToImagePair`, e.g. from
    `LabelsToImagePair.shapes(...)` or `.brains(...)`) synthesises moving
    and fixed images with their label maps, `network` (from
    `registration_network`) registers the moving image to the fixed one,
    and the loss compares what the displacement makes of the moving image
    with the fixed one, plus `regularization_weight` times the L2 gradient
    penalty of the displacement (`synthlayers.losses.gradient_penalty`,
    VoxelMorph's `Grad("l2")`, on the full-resolution displacement as in
    SynthMorph).

    - `similarity="labels"` (SynthMorph): the moving label maps, one-hot
      over the generator's target labels, are warped linearly with the
      displacement, and the compiled loss (default
      `DiceLoss(squared=False)`, VoxelMorph's soft Dice) compares them
      with the one-hot fixed label maps. Choose the labels whose overlap
      counts with the generator's `output_labels` or
      `DiceLoss(labels=[channel indices])`.
    - `similarity="images"`: the compiled loss (default `LocalNCCLoss()`,
      VoxelMorph's NCC with window 9; `MeanSquaredErrorLoss()` also fits)
      compares the moved and the fixed images. Only for one contrast.

    How: `call` returns a dict with the pair, the network's outputs and the
    warped one-hot moving labels; the overridden `compute_loss` passes the
    pair chosen by `similarity` to the compiled loss (and metrics) and adds
    the penalty. `fit`, `evaluate` take no `y`.

    With a network that segments its inputs (`registration_network(...,
    segmenter_classes=K)`, outputs `"moving_probabilities"` and
    `"fixed_probabilities"`), the loss adds `segmentation_weight` times the
    mean of `DiceLoss(squared=False)` between each probability map and its
    one-hot label map (K must be the number of target labels).

    For registering real images use the network alone, `model.network`
    (inputs `[moving, fixed]`, outputs as in `registration_network`).

    Reference:
        - [Hoffmann et al., SynthMorph: learning contrast-invariant
          registration without acquired images, IEEE Transactions on Medical
          Imaging 2022](https://doi.org/10.1109/TMI.2021.3116879)

    Args:
        generator: a `LabelsToImagePair` (or any layer returning its dict).
        network: a model taking `[moving, fixed]` and returning a dict with
            `"moved_images"` and `"displacement"` (`registration_network`).
        similarity: `"labels"` or `"images"`. Defaults to `"labels"`.
        regularization_weight: weight of the gradient penalty, >= 0.
            Defaults to `1.0` (SynthMorph).
        segmentation_weight: weight of the segmenter's Dice, >= 0 (used
            only with a network that segments). Defaults to `1.0`.
        **kwargs: base model arguments such as `name`.

    Call arguments:
        data: what the generator takes: a label map, `[moving_map,
            fixed_map]`, or (random label maps) any tensor with a batch axis.
        training: synthesise randomly. Defaults to `False` when called
            directly; `fit` passes `True`.

    Output shape:
        A dict: the generator's four entries, `"moved_images"`,
        `"displacement"`, `"velocity"` and, with `similarity="labels"`,
        `"moved_segmentation_masks"` (one-hot floats) and
        `"fixed_segmentation_masks"` made one-hot.

    Example:

    >>> import keras
    >>> import numpy as np
    >>> from synthlayers.layers import LabelsToImagePair
    >>> generator = LabelsToImagePair.shapes((32, 32), num_labels=4, seed=0)
    >>> network = registration_network((32, 32, 1), features=4)
    >>> model = RegistrationModel(generator, network)
    >>> model.compile(optimizer=keras.optimizers.Adam(1e-4))
    >>> out = model(np.zeros((2, 1)), training=True)  # two random pairs
    >>> tuple(out["moved_segmentation_masks"].shape), tuple(out["displacement"].shape)
    ((2, 32, 32, 4), (2, 32, 32, 2))
    >>> history = model.fit(steps_per_epoch=100, epochs=10)  # doctest: +SKIP
    """

    def __init__(
        self,
        generator,
        network,
        similarity="labels",
        regularization_weight=1.0,
        segmentation_weight=1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(generator, keras.layers.Layer):
            raise ValueError(
                "`generator` must be a Keras layer returning moving and fixed "
                "images and label maps (a LabelsToImagePair). "
                f"Received: generator={generator!r}"
            )
        if not isinstance(network, keras.layers.Layer):
            raise ValueError(
                "`network` must be a Keras model taking [moving, fixed] images "
                f"(from registration_network). Received: network={network!r}"
            )
        self.generator = generator
        self.network = network
        self.similarity = check_choice(similarity, "similarity", SIMILARITIES)
        self.regularization_weight = check_number(
            regularization_weight, "regularization_weight", min_value=0.0
        )
        self.segmentation_weight = check_number(
            segmentation_weight, "segmentation_weight", min_value=0.0
        )
        self.transformer = SpatialTransformer(name="label_transformer")
        # Keras losses, so that data-parallel training scales them per replica.
        self.regularization = GradientLoss()
        self.segmentation = DiceLoss(squared=False)

    def build(self, input_shape=None):
        self.built = True

    def _one_hot_masks(self, masks):
        if getattr(self.generator, "one_hot", True) or masks.shape[-1] != 1:
            return ops.cast(masks, "float32")
        return _one_hot(masks, self.generator.target_labels)

    def call(self, data, training=False):
        training = bool(training)
        if training:
            # Under tf.distribute each replica draws its own pairs.
            with replica_seeds(self):
                return self._forward(data, training)
        return self._forward(data, training)

    def _forward(self, data, training):
        if (
            not isinstance(data, (list, tuple))
            and len(data.shape) >= 4
            and not is_integer_dtype(data.dtype)
        ):
            # Under `tf.distribute`, `fit` builds the model on the replicas'
            # batches averaged into floats: label values, rounded.
            data = ops.cast(ops.round(data), "int32")
        pair = self.generator(data, training=training)
        missing = {MOVING_IMAGES, FIXED_IMAGES, MOVING_MASKS, FIXED_MASKS} - set(pair)
        if missing:
            raise ValueError(
                "The generator must return a dict with the moving and fixed images "
                f"and label maps. Missing keys: {sorted(missing)}"
            )
        out = self.network([pair[MOVING_IMAGES], pair[FIXED_IMAGES]], training=training)
        outputs = {**pair, **out}
        segments = MOVING_PROBABILITIES in out
        if self.similarity == "labels" or segments:
            outputs[FIXED_MASKS] = self._one_hot_masks(pair[FIXED_MASKS])
        if self.similarity == "labels":
            moving = self._one_hot_masks(pair[MOVING_MASKS])
            outputs[MOVED_MASKS] = self.transformer([moving, out[DISPLACEMENT]])
        if segments:
            classes = out[MOVING_PROBABILITIES].shape[-1]
            expected = outputs[FIXED_MASKS].shape[-1]
            if classes != expected:
                raise ValueError(
                    "The network's segmenter must have one class per target label "
                    f"of the generator ({expected}). Received: "
                    f"segmenter_classes={classes}"
                )
        return outputs

    def fit(self, x=None, y=None, batch_size=None, *args, **kwargs):
        """`keras.Model.fit`; without `x`, `steps_per_epoch` random pairs per epoch.

        With a generator of random label maps (`LabelsToImagePair.shapes`),
        `x` may be left out: each epoch then runs `steps_per_epoch` steps of
        `batch_size` (default 1) pairs made from nothing, e.g.
        `model.fit(steps_per_epoch=100, epochs=10)`. Otherwise give label
        maps (or a dataset of them) as `x`, as for `keras.Model.fit`.
        """
        if y is not None:
            self._split(y, None)  # the error, before any tracing
        if x is None:
            steps = kwargs.pop("steps_per_epoch", None)
            if steps is None:
                raise ValueError(
                    "Without `x` (label maps), give `steps_per_epoch`: the number "
                    "of training steps per epoch on random label maps. "
                    "Received: x=None, steps_per_epoch=None"
                )
            batch_size = batch_size or 1
            steps = check_int(steps, "steps_per_epoch", min_value=1)
            x = np.zeros((steps * batch_size, 1), "float32")
        return super().fit(x, y, batch_size, *args, **kwargs)

    def compile(self, optimizer="adam", loss=None, **kwargs):
        """Configure training; `loss=None` picks the loss for `similarity`.

        Args:
            optimizer: as in `keras.Model.compile`. Defaults to `"adam"`
                (SynthMorph: Adam with learning rate 1e-4).
            loss: a loss taking `(fixed, moved)`: one-hot label maps for
                `similarity="labels"`, images for `"images"`. Defaults to
                `None`: `DiceLoss(squared=False)` resp. `LocalNCCLoss()`.
            **kwargs: the other arguments of `keras.Model.compile` (metrics
                see the same pair).
        """
        if loss is None:
            loss = (
                DiceLoss(squared=False)
                if self.similarity == "labels"
                else LocalNCCLoss()
            )
        super().compile(optimizer=optimizer, loss=loss, **kwargs)

    def compile_from_config(self, config):
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if self.optimizer is not None and self.built:
            self.optimizer.build(self.trainable_variables)

    def _split(self, y, y_pred):
        if y is not None:
            raise ValueError(
                "RegistrationModel trains on the pairs it synthesises: give `fit` "
                "and `evaluate` label maps only (x), no y. Received: a y of type "
                f"{type(y).__name__}"
            )
        if self.similarity == "labels":
            return y_pred[FIXED_MASKS], y_pred[MOVED_MASKS]
        return y_pred[FIXED_IMAGES], y_pred[MOVED_IMAGES]

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        fixed, moved = self._split(y, y_pred)
        loss = super().compute_loss(x, fixed, moved, sample_weight, training=training)
        if self.regularization_weight:
            displacement = y_pred[DISPLACEMENT]
            penalty = self.regularization(displacement, displacement)
            loss = loss + self.regularization_weight * penalty
        if self.segmentation_weight and MOVING_PROBABILITIES in y_pred:
            moving = self._one_hot_masks(y_pred[MOVING_MASKS])
            dice = self.segmentation(
                moving, y_pred[MOVING_PROBABILITIES]
            ) + self.segmentation(y_pred[FIXED_MASKS], y_pred[FIXED_PROBABILITIES])
            loss = loss + 0.5 * self.segmentation_weight * dice
        return loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        fixed, moved = self._split(y, y_pred)
        return super().compute_metrics(x, fixed, moved, sample_weight)

    def get_config(self):
        config = super().get_config()
        config.update(
            generator=keras.saving.serialize_keras_object(self.generator),
            network=keras.saving.serialize_keras_object(self.network),
            similarity=self.similarity,
            regularization_weight=self.regularization_weight,
            segmentation_weight=self.segmentation_weight,
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
