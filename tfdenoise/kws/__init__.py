"""Keyword spotting on the denoiser's pipeline (docs/design.md §7): streaming, state-free models.

    data (clips, splits, noise augmentation) -> features (log-mel / MFCC, streaming)
    -> layertable (the networks, hand-counted) -> models (Keras, KwsClassifier, checkpoints)
    -> train_config + train -> stream (words in noise) -> det (FRR vs FA/h) -> evaluate
    -> converters (kws_convert, kws_runner, kws) -> targets

Each model sees a fixed window of recent feature frames and keeps no recurrent state, so it
can start anywhere in a stream: one decision per feature hop.  This package is the speech
layer: it never imports the converters; a ``.tflite`` is loaded for evaluation by the app
layer (:mod:`tfdenoise.kws_evaluate`).
"""
