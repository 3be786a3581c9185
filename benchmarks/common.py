"""Shared by the benchmark scripts (run as scripts: this directory is on sys.path)."""


def synthesis_step(layer, mode):
    """`layer` as a step function that really draws, in benchmark `mode`.

    `"eager"`: the layer itself. `"graph"` / `"xla"`: a compiled
    `Model.predict_on_batch` (`jit_compile` for `"xla"`) of a model that calls
    the layer with `training=True`, since `predict` passes `training=False` to
    the layers of a functional model.
    """
    import keras

    if mode == "eager":
        return layer

    class TrainingMode(keras.Model):
        def __init__(self, layer):
            super().__init__()
            self.synthesis = layer

        def call(self, labels):
            return self.synthesis(labels, training=True)

    model = TrainingMode(layer)
    model.compile(jit_compile=mode == "xla")
    return model.predict_on_batch
