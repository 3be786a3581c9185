"""Export a trained inference network as a TensorFlow SavedModel."""

import os

import keras


def _image_input_rank(model):
    """The spatial rank (2 or 3) of a model with one `(batch, *spatial, ch)` input."""
    inputs = getattr(model, "inputs", None)
    if not inputs or len(inputs) != 1:
        raise ValueError(
            "Expected a built Keras model with one input of shape "
            "(batch, *spatial, channels). Received: model with inputs="
            f"{inputs!r}"
        )
    rank = len(inputs[0].shape) - 2
    if rank not in (2, 3):
        raise ValueError(
            "Expected a 2D or 3D network (input (batch, *spatial, channels)). "
            f"Received: model input shape {tuple(inputs[0].shape)}"
        )
    return rank


def export_network(model, path, verbose=False):
    """Export the inference network as a TensorFlow SavedModel, any spatial size.

    Calls the public `model.export(path, format="tf_saved_model")` with an
    input signature whose batch and spatial sizes are all `None`, so the
    reloaded artifact (`tf.saved_model.load(path).serve(x)`) accepts any
    batch and any spatial size the network supports. Export the network
    alone (no synthesis layers). Needs TensorFlow installed; Keras supports
    this export from the TensorFlow and JAX backends.

    Args:
        model: a Keras model with one input `(batch, *spatial, channels)`.
        path: the output directory.
        verbose: print Keras's export summary. Defaults to False.

    Returns:
        The path, as a string.

    Raises:
        ValueError: when the model does not have one 2D/3D image input.

    Example:

    >>> export_network(model, "synthseg_savedmodel")  # doctest: +SKIP
    >>> import tensorflow as tf
    >>> reloaded = tf.saved_model.load("synthseg_savedmodel")  # doctest: +SKIP
    >>> probabilities = reloaded.serve(x)  # doctest: +SKIP
    """
    rank = _image_input_rank(model)
    spec = model.inputs[0]
    signature = [
        keras.InputSpec(
            shape=(None,) * (rank + 1) + (spec.shape[-1],),
            dtype=keras.backend.standardize_dtype(spec.dtype),
        )
    ]
    path = os.fspath(path)
    model.export(
        path, format="tf_saved_model", verbose=verbose, input_signature=signature
    )
    return path
