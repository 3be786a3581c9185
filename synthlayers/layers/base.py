"""Base classes: images and/or label maps in, the same transformation for both.

The method names mirror Keras 3 preprocessing layers so that our layers read
the same and compose with `keras.layers.Pipeline`:

- `get_random_transformation(data, training=True, seed=None)` draws every
  random value as tensors with a leading batch axis, from `seed` (a
  `keras.random.SeedGenerator`) when given, else from `self.seed_generator`;
- `transform_images(images, transformation, training)` and
  `transform_segmentation_masks(masks, transformation, training)` apply them
  with the pure functions of `synthlayers.ops`.

Only tensors travel between the two (never a seed generator, never state on
`self`), so images and label maps of one sample always get the same draw.

Dict keys other than `"images"` and `"segmentation_masks"` (for example the
`"displacement"`, `"affine"` or `"bias_field"` of an earlier layer with
`return_transform`) pass through unchanged, so layers chain in a
`keras.layers.Pipeline`. Images come out in the layer's compute dtype
(integer images are cast to it); label maps keep their dtype.
"""

import keras
from keras import ops

IMAGES = "images"
MASKS = "segmentation_masks"
SPATIAL_RANKS = {4: 2, 5: 3}


def is_integer_dtype(dtype):
    """True for (u)int dtypes of any backend."""
    return "int" in keras.backend.standardize_dtype(dtype)


class BaseLayer(keras.layers.Layer):
    """Base for layers that take images, label maps, or a dict of both.

    Input is a tensor or a dict with keys `"images"` and/or
    `"segmentation_masks"`. A bare tensor is taken as a label map when its
    dtype is integer, as images otherwise, and the output is the same kind of
    structure as the input. Images are `(batch, *spatial, channels)` floats,
    label maps `(batch, *spatial, 1)` integers, with 2 or 3 spatial axes.
    Other keys of a dict pass through unchanged (a layer's own extra outputs
    replace a key of the same name).

    The dtype rule lives here: `call` casts what `transform_images` returns
    to `image_output_dtype` (by default the layer's compute dtype, so integer
    images are cast to it and a `transform_images` that returns its input
    for a `None` transformation needs no cast of its own). Subclasses
    compute in float32 where precision matters.

    Subclasses implement `get_random_transformation`, `transform_images`,
    `transform_segmentation_masks` and, when they change the spatial shape or
    add outputs, `compute_spatial_output_shape` and `extra_outputs`.
    """

    # Deprecated argument names {old: new}, kept as keyword aliases for one
    # release (see `synthlayers.validation.renamed_argument`); `from_config`
    # reads configs saved with the old names.
    renamed_arguments = {}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.built = True

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for old, new in cls.renamed_arguments.items():
            if old in config and new not in config:
                config[new] = config.pop(old)
        return super().from_config(config)

    # Hooks for subclasses --------------------------------------------------

    def get_random_transformation(self, data, training=True, seed=None):
        """Parameters of one call as a dict of tensors (batch axis first).

        `data` is a dict with `"images"` and/or `"segmentation_masks"`;
        `seed` an optional `keras.random.SeedGenerator` to draw from instead
        of the layer's own. `None` means "no change".
        """
        return None

    def transform_images(self, images, transformation, training=True):
        return images

    def transform_segmentation_masks(self, masks, transformation, training=True):
        return masks

    def compute_spatial_output_shape(self, spatial_shape):
        """Spatial output shape for a spatial input shape (may hold None)."""
        return tuple(spatial_shape)

    def extra_outputs(self, data, transformation):
        """Additional named outputs (e.g. a displacement field). A dict."""
        return {}

    def extra_output_spec(self, data):
        """KerasTensors for `extra_outputs`, for symbolic calls."""
        return {}

    def image_output_dtype(self, dtype):
        """Dtype of output images for an input image dtype: the compute dtype."""
        return self.compute_dtype

    def cast_images(self, images):
        """`images` in `image_output_dtype` (no op when already there)."""
        dtype = keras.backend.standardize_dtype(self.image_output_dtype(images.dtype))
        if keras.backend.standardize_dtype(images.dtype) == dtype:
            return images
        return ops.cast(images, dtype)

    # Structure handling -----------------------------------------------------

    def _to_dict(self, data):
        """`({images/masks}, was_dict)`; other keys of a dict are left out."""
        if isinstance(data, dict):
            known = {k: v for k, v in data.items() if k in (IMAGES, MASKS)}
            if not known:
                raise ValueError(
                    f"{self.__class__.__name__} takes a tensor or a dict with keys "
                    f"'{IMAGES}' and/or '{MASKS}'. Received keys: {sorted(data)}"
                )
            return known, True
        if is_integer_dtype(data.dtype):
            return {MASKS: data}, False
        return {IMAGES: data}, False

    def check_inputs(self, data):
        """Validate ranks, dtypes and matching shapes; return the spatial ndim."""
        name = self.__class__.__name__
        ndims = set()
        for key, x in data.items():
            rank = len(x.shape)
            if rank not in SPATIAL_RANKS:
                raise ValueError(
                    f"{name} expects `{key}` of rank 4 (batch, height, width, "
                    f"channels) or 5 (batch, depth, height, width, channels). "
                    f"Received: {key}.shape={tuple(x.shape)}"
                )
            ndims.add(SPATIAL_RANKS[rank])
        if MASKS in data and not is_integer_dtype(data[MASKS].dtype):
            raise ValueError(
                f"{name} expects `{MASKS}` to be an integer label map. Received: "
                f"{MASKS}.dtype={keras.backend.standardize_dtype(data[MASKS].dtype)}"
            )
        if IMAGES in data and MASKS in data:
            shape_i = tuple(data[IMAGES].shape)[:-1]
            shape_m = tuple(data[MASKS].shape)[:-1]
            same = len(shape_i) == len(shape_m) and all(
                a is None or b is None or a == b for a, b in zip(shape_i, shape_m)
            )
            if not same:
                raise ValueError(
                    f"{name} expects `{IMAGES}` and `{MASKS}` with the same batch "
                    f"and spatial shape. Received: {IMAGES}.shape="
                    f"{tuple(data[IMAGES].shape)}, {MASKS}.shape="
                    f"{tuple(data[MASKS].shape)}"
                )
        return ndims.pop()

    @staticmethod
    def _passed_through(data):
        """The entries of a dict input that the layer does not transform."""
        if not isinstance(data, dict):
            return {}
        return {k: v for k, v in data.items() if k not in (IMAGES, MASKS)}

    def call(self, data, training=True):
        passed = self._passed_through(data)
        data, was_dict = self._to_dict(data)
        self.check_inputs(data)
        transformation = self.get_random_transformation(data, training=training)
        outputs = {}
        if IMAGES in data:
            outputs[IMAGES] = self.cast_images(
                self.transform_images(data[IMAGES], transformation, training=training)
            )
        if MASKS in data:
            outputs[MASKS] = self.transform_segmentation_masks(
                data[MASKS], transformation, training=training
            )
        extra = self.extra_outputs(data, transformation)
        if was_dict or extra:
            return {**outputs, **passed, **extra}
        return next(iter(outputs.values()))

    def compute_output_spec(self, data, training=True):
        passed = self._passed_through(data)
        data, was_dict = self._to_dict(data)
        self.check_inputs(data)
        outputs = {}
        for key, x in data.items():
            shape = tuple(x.shape)
            spatial = self.compute_spatial_output_shape(shape[1:-1])
            channels = self.compute_channels(key, shape[-1])
            dtype = self.image_output_dtype(x.dtype) if key == IMAGES else x.dtype
            if key == MASKS:
                dtype = self.mask_output_dtype(x.dtype)
            outputs[key] = keras.KerasTensor((shape[0], *spatial, channels), dtype)
        extra = self.extra_output_spec(data)
        if was_dict or extra:
            return {**outputs, **passed, **extra}
        return next(iter(outputs.values()))

    def compute_channels(self, key, channels):
        """Channel count of output `key` for an input channel count."""
        return channels

    def mask_output_dtype(self, dtype):
        """Dtype of transformed label maps for an input label dtype."""
        return dtype


class BaseRandomLayer(BaseLayer):
    """Base for stochastic layers: a seed generator and `training` semantics.

    `training=False` (as in `Model.predict` and `evaluate`) makes the layer
    deterministic: each subclass documents what it does then (usually the
    identity, or only the deterministic part such as a centred crop).
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise ValueError(
                f"`seed` must be an integer or None. Received: seed={seed!r}"
            )
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def seed_generator_for(self, seed=None):
        """The generator to draw from: `seed` when given, else the layer's."""
        return self.seed_generator if seed is None else seed

    def get_config(self):
        config = super().get_config()
        config["seed"] = self.seed
        return config


def batch_size_of(data):
    """The (possibly dynamic) batch size of a dict of tensors."""
    return ops.shape(next(iter(data.values())))[0]


def spatial_shape_of(data, name):
    """Static spatial shape of the first tensor in `data`; error if unknown."""
    x = next(iter(data.values()))
    shape = tuple(x.shape)[1:-1]
    if any(s is None for s in shape):
        raise ValueError(
            f"{name} needs static spatial dimensions when it runs. Received "
            f"shape={tuple(x.shape)}. Under TensorFlow, Model.fit/predict on inputs "
            "of several sizes relaxes shapes to None: use inputs of one size per "
            "compiled function, or build the model with fixed spatial dimensions."
        )
    return shape
