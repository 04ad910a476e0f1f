#!/usr/bin/env bash
# Reproduce the shipped LSTM256 (tfdenoise/pretrained/lstm256): the four training phases of its
# model card as the `tfdenoise train` commands they ran with, then tools/ship_model.py.
# Background and scores: docs/training.md.
#
#   tools/recipes/lstm256.sh                      # data from ../shared/data (project-relative)
#   DATA=/path/to/data tools/recipes/lstm256.sh   # any folder with speech/ and noise/ in that layout
#
# Cost: phase 1, 5 epochs, 48.8 min of training on a 2-core x86_64 CPU without a GPU, shared with
# the other first runs (GRU128, GRU256, LSTM256 and LSTM128's epochs 1-20 trained side by
# side); phase 2, 56 epochs, 193.1 min beside other work; phase 3, 45 epochs, 118.6 min alone;
# phase 4, 40 epochs, 108 min alone.
# Re-running the script after an interruption resumes the run (--resume). The result is the
# same recipe, not bit-identical weights (TensorFlow's CPU kernels are not deterministic across
# machines and thread counts).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"   # strict mode, project root, DATA/TFDENOISE/PYTHON

# Epochs 1-5: 1024 x 1 s segments at 0-15 dB SNR by segment mean power (the only SNR level
# then), constant learning rate 1e-3, batch 32, seed 0; best checkpoint by validation loss
# (epoch 4, validation loss 0.7210).
# Ran as: --epochs 6, stopped after epoch 5 (constant rate: the same rates).
start=(); [[ -d runs/lstm256/last ]] && start=(--resume)   # a fresh run, or its continuation on a re-run
"$TFDENOISE" train --variant lstm256 --speech "$DATA/speech" --noise "$DATA/noise" --batch 32 --seed 0 \
    --cache runs/cache --out runs/lstm256 --epochs 5 --lr 1e-3 \
    --segment 1 --segments-per-epoch 1024 --snr 0 15 --snr-level mean "${start[@]}"

# Phase 2, epochs 5-60 (2026-12-02, beside other work, in two sessions: --resume continued it):
# the recipe that moved LSTM128, started from phase 1's best (epoch 4) without its optimizer state
# (SECOND_PHASE in common.sh: 2048 x 2 s segments, SNR 0-15 dB by active speech level, no
# `voice/*` noise, 40 % babble / speech-shaped noise, + 3 x the compressed spectral loss; best by
# PESQ on 32 held-out mixtures: epoch 53, 1.909). On 96 fresh held-out mixtures of real noise:
# 1.782 vs 1.760 for epoch 34 (shipped before) and 1.549 for epoch 4.
fork_best runs/lstm256 runs/lstm256_rc
"$TFDENOISE" train --variant lstm256 --speech "$DATA/speech" --noise "$DATA/noise" --batch 32 --seed 0 \
    --cache runs/cache --out runs/lstm256_rc --resume --epochs 60 --lr 3e-4 --lr-final 3e-5 "${SECOND_PHASE[@]}"

# Phase 3, epochs 54-98 (2026-12-03, run folder runs/l256_p4 then; alone on the machine at
# nice 19): from phase 2's best (epoch 53) without its optimizer state, GRU256's phase 4
# options: the same mixtures and selection without the log-magnitude loss (--mag-loss 0), the
# saved and scored weights a moving average (--ema 0.995), learning rate 6e-5 at epoch 54
# decaying log-linearly to 1e-5 at epoch 98; best epoch 90 (1.937 on the 32 selection
# mixtures; 1.791 on 96 fresh real-noise held-out mixtures, against 1.782 for epoch 53).
fork_best runs/lstm256_rc runs/lstm256_p3
"$TFDENOISE" train --variant lstm256 --speech "$DATA/speech" --noise "$DATA/noise" --batch 32 --seed 0 \
    --cache runs/cache --out runs/lstm256_p3 --resume "${SECOND_PHASE[@]}" --mag-loss 0 --ema 0.995 \
    --epochs 98 --lr 5.193616e-4 --lr-final 1e-5

# Phase 4, epochs 91-130 (2026-12-03, run folder runs/l256_p5 then; alone on the machine at
# nice 19): from phase 3's best (epoch 90) without its optimizer state, the same options with a
# lower restart: learning rate 3e-5 at epoch 91 decaying log-linearly to 5e-6 at epoch 130; best
# epoch 123 (1.946 on the 32 selection mixtures; 1.798 on 96 fresh real-noise held-out mixtures,
# against 1.791 for epoch 90).
fork_best runs/lstm256_p3 runs/lstm256_p4
"$TFDENOISE" train --variant lstm256 --speech "$DATA/speech" --noise "$DATA/noise" --batch 32 --seed 0 \
    --cache runs/cache --out runs/lstm256_p4 --resume "${SECOND_PHASE[@]}" --mag-loss 0 --ema 0.995 \
    --epochs 130 --lr 1.8743682e-3 --lr-final 5e-6

# Ship runs/lstm256_p4/best: replaces tfdenoise/pretrained/lstm256 (weights, the seven .tflite
# exports, MODEL_CARD.md and card.json measured on the bundled test pairs). The shipped card's
# history is the rows before the run's first epoch, taken from the card it replaces (phases
# 1-3: epochs 1-90), followed by runs/lstm256_p4/history.json, which starts at epoch 91.
"$PYTHON" tools/ship_model.py runs/lstm256_p4
