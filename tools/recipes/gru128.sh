#!/usr/bin/env bash
# Reproduce the shipped GRU128 (tfdenoise/pretrained/gru128): the three training phases of its
# model card as the `tfdenoise train` commands they ran with, then tools/ship_model.py.
# Background and scores: docs/training.md.
#
#   tools/recipes/gru128.sh                      # data from ../shared/data (project-relative)
#   DATA=/path/to/data tools/recipes/gru128.sh   # any folder with speech/ and noise/ in that layout
#
# Cost: phase 1 30 epochs, 57.5 min of training on a 2-core x86_64 CPU without a GPU, shared with
# the other first runs (GRU128, GRU256, LSTM256 and LSTM128's epochs 1-20 trained side by
# side); phase 2 76.2 min; phase 3 110 epochs, 118 min (57-83 s an epoch, mostly alone).
# Re-running the script after an interruption resumes the run (--resume). The result is the
# same recipe, not bit-identical weights (TensorFlow's CPU kernels are not deterministic across
# machines and thread counts).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"   # strict mode, project root, DATA/TFDENOISE/PYTHON

# Epochs 1-30: 1024 x 1 s segments at 0-15 dB SNR by segment mean power (the only SNR level
# then), constant learning rate 1e-3, batch 32, seed 0; best checkpoint by validation loss
# (epoch 29, validation loss 0.5708).
# Ran as: --epochs 60, stopped after epoch 30 (constant rate: the same rates).
start=(); [[ -d runs/gru128/last ]] && start=(--resume)   # a fresh run, or its continuation on a re-run
"$TFDENOISE" train --variant gru128 --speech "$DATA/speech" --noise "$DATA/noise" --batch 32 --seed 0 \
    --cache runs/cache --out runs/gru128 --epochs 30 --lr 1e-3 \
    --segment 1 --segments-per-epoch 1024 --snr 0 15 --snr-level mean "${start[@]}"

# Phase 2, epochs 30-90 (2026-12-02, 76.2 min at nice 19 beside other work): the recipe that moved LSTM128, started from
# phase 1's best (epoch 29) without its optimizer state: 2048 x 2 s segments, SNR 0-15 dB by
# active speech level, no `voice/*` noise, 40 % babble / speech-shaped noise, + 3 x the
# compressed spectral loss, learning rate 3e-4 decaying towards 3e-5 over the 90 epochs;
# best by PESQ on 32 held-out mixtures (epoch 84, 1.902). On 96 fresh held-out mixtures of
# real noise (tools/heldout_scores.py runs/gru128_rc ... --synthetic-noise 0): 1.857 vs 1.728
# for epoch 29.
fork_best runs/gru128 runs/gru128_rc
"$TFDENOISE" train --variant gru128 --speech "$DATA/speech" --noise "$DATA/noise" --batch 32 --seed 0 \
    --cache runs/cache --out runs/gru128_rc --resume --epochs 90 --lr 3e-4 --lr-final 3e-5 "${SECOND_PHASE[@]}"

# Phase 3, epochs 85-194 (2026-12-02/03, run folder runs/g128_p3 then): from phase 2's best
# (epoch 84) without its optimizer state, the same mixtures and selection without the
# log-magnitude loss (--mag-loss 0), the saved and scored weights a moving average
# (--ema 0.995), learning rate 8e-5 at epoch 85 decaying log-linearly to 1e-5 at epoch 194
# (GRU256's phase 4); best epoch 175 (1.943 on the 32 selection mixtures; 1.871 on 96 fresh
# real-noise held-out mixtures, against 1.857 for epoch 84).
fork_best runs/gru128_rc runs/gru128_p3
"$TFDENOISE" train --variant gru128 --speech "$DATA/speech" --noise "$DATA/noise" --batch 32 --seed 0 \
    --cache runs/cache --out runs/gru128_p3 --resume "${SECOND_PHASE[@]}" --mag-loss 0 --ema 0.995 \
    --epochs 194 --lr 3.972366e-4 --lr-final 1e-5

# Ship runs/gru128_p3/best: replaces tfdenoise/pretrained/gru128 (weights, the seven .tflite
# exports, MODEL_CARD.md and card.json measured on the bundled test pairs). The shipped card's
# history is the rows before the run's first epoch, taken from the card it replaces (phases
# 1-2: epochs 1-84), followed by runs/gru128_p3/history.json, which starts at epoch 85.
"$PYTHON" tools/ship_model.py runs/gru128_p3
