#!/usr/bin/env bash
# Reproduce the shipped GRU256 (tfdenoise/pretrained/gru256): the one training phase of its
# model card as the `tfdenoise train` command it ran with, then tools/ship_model.py.
# Background and scores: docs/training.md.
#
#   tools/recipes/gru256.sh                      # data from ../shared/data (project-relative)
#   DATA=/path/to/data tools/recipes/gru256.sh   # any folder with speech/ and noise/ in that layout
#
# Cost: 6 epochs, 48.3 min of training on a 2-core x86_64 CPU without a GPU, shared with
# the other first runs (GRU128, GRU256, LSTM256 and LSTM128's epochs 1-20 trained side by
# side). Re-running the script after an interruption resumes the run (--resume). The
# result is the same recipe, not bit-identical weights (TensorFlow's CPU kernels are not
# deterministic across machines and thread counts).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"   # strict mode, project root, DATA/TFDENOISE/PYTHON

# Epochs 1-6: 1024 x 1 s segments at 0-15 dB SNR by segment mean power (the only SNR level
# then), constant learning rate 1e-3, batch 32, seed 0; best checkpoint by validation loss
# (epoch 4, validation loss 0.6862).
# Ran as: --epochs 10, stopped after epoch 6 (constant rate: the same rates).
start=(); [[ -d runs/gru256/last ]] && start=(--resume)   # a fresh run, or its continuation on a re-run
"$TFDENOISE" train --variant gru256 --speech "$DATA/speech" --noise "$DATA/noise" --batch 32 --seed 0 \
    --cache runs/cache --out runs/gru256 --epochs 6 --lr 1e-3 \
    --segment 1 --segments-per-epoch 1024 --snr 0 15 --snr-level mean "${start[@]}"

# Phase 2, epochs 5-35 (2026-12-02, 38.9 min beside other work): the recipe that moved
# LSTM128, started from phase 1's best (epoch 4) without its optimizer state: 2048 x 2 s
# segments, SNR 0-15 dB by active speech level, no `voice/*` noise, 40 % babble /
# speech-shaped noise, + 3 x the compressed spectral loss; best by PESQ on 32 held-out
# mixtures (epoch 35, 1.864). On 96 fresh held-out mixtures of real noise: 1.765 vs 1.643 for
# epoch 4. Ran as: --epochs 40 --lr 3e-4 --lr-final 3e-5, stopped after epoch 35 at a session's
# end and resumed to epoch 40 in the next (epochs 36-40: 1.836-1.863, none above epoch 35).
fork_best runs/gru256 runs/gru256_rc
"$TFDENOISE" train --variant gru256 --speech "$DATA/speech" --noise "$DATA/noise" --batch 32 --seed 0 \
    --cache runs/cache --out runs/gru256_rc --resume --epochs 40 --lr 3e-4 --lr-final 3e-5 "${SECOND_PHASE[@]}"

# Ship runs/gru256_rc/best: replaces tfdenoise/pretrained/gru256 (weights, the six .tflite
# exports, MODEL_CARD.md and card.json measured on the bundled test pairs). The shipped card's
# history is phase 1's 4 rows (runs/gru256/history.json, epochs 1-4) followed by
# runs/gru256_rc/history.json, which starts at epoch 5.
"$PYTHON" tools/ship_model.py runs/gru256_rc
