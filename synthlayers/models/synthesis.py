"""A model that always draws: synthesis layers under `predict` and `compile`."""

import keras


@keras.saving.register_keras_serializable(package="synthlayers")
class SynthesisModel(keras.Model):
    """Run a random layer in training mode, also inside `predict`.

    Random layers (`LabelsToImage`, `RandomSpatialTransform`, ...) draw only
    when called with `training=True`, as Keras preprocessing layers do, and
    `Model.predict` calls every layer with `training=False`. This model
    calls its layer with `training=True` whatever it is given, so that
    `predict`, `predict_on_batch` and compiled (`jit_compile`) calls draw new
    samples: to write synthetic data sets, preview a generator, or time it.

    Args:
        layer: the layer to call, e.g. `LabelsToImage.synthseg(...)`.
        **kwargs: `keras.Model` arguments (`name`, ...).

    Call arguments:
        data: what `layer` takes: a tensor, or a dict of tensors.
        training: ignored; the layer always runs with `training=True`.

    Input shape:
        That of `layer`.

    Output shape:
        That of `layer`: a tensor, or a dict of tensors.

    Example:

    >>> import numpy as np
    >>> from synthlayers.layers import RandomGamma
    >>> model = SynthesisModel(RandomGamma(seed=0))
    >>> images = np.linspace(0, 1, 128, dtype="float32").reshape(2, 8, 8, 1)
    >>> first = model.predict(images, verbose=0)
    >>> second = model.predict(images, verbose=0)
    >>> bool(np.allclose(first, images)), bool(np.allclose(first, second))
    (False, False)
    """

    def __init__(self, layer, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(layer, keras.layers.Layer):
            raise ValueError(
                "`layer` must be a Keras layer. Received: layer of type "
                f"{type(layer).__name__}"
            )
        self.layer = layer

    def call(self, data, training=None):
        return self.layer(data, training=True)

    def get_config(self):
        config = super().get_config()
        config["layer"] = keras.saving.serialize_keras_object(self.layer)
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        layer = keras.saving.deserialize_keras_object(
            config.pop("layer"), custom_objects=custom_objects
        )
        return cls(layer, **config)
