"""Keyword spotting on the denoiser's pipeline (docs/design.md §7): streaming, state-free models.

    data (clips, splits, noise augmentation) -> features (log-mel / MFCC, streaming)
    -> models (dnn, cnn, dscnn) -> train -> evaluate (accuracy, DET) -> converters -> targets

Each model sees a fixed window of recent feature frames and keeps no recurrent state, so it
can start anywhere in a stream: one decision per feature hop.
"""
