#!/usr/bin/env bash
# Reproduce the shipped GRU256 (tfdenoise/pretrained/gru256): the four training phases of
# its model card as the `tfdenoise train` commands they ran with, then tools/ship_model.py.
# Background and scores: docs/training.md.
#
#   tools/recipes/gru256.sh                      # data from ../shared/data (project-relative)
#   DATA=/path/to/data tools/recipes/gru256.sh   # any folder with speech/ and noise/ in that layout
#
# Cost: 6 + 36 + 49 + 60 epochs, about 6 h of training on a 2-core x86_64 CPU without a GPU,
# shared with other runs (phase 1: 48.3 min beside GRU128, LSTM256 and LSTM128's epochs 1-20;
# phase 2: 38.9 min for epochs 5-35; phase 3: 138.7 min; phase 4: 105 min). Re-running the
# script after an interruption resumes the run (--resume). The result is the same recipe,
# not bit-identical weights (TensorFlow's CPU kernels are not deterministic across machines
# and thread counts).
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

# Phase 3, epochs 36-84 (2026-12-02, run folder runs/g256_mag0 then; 138.7 min): from
# phase 2's best (epoch 35) without its optimizer state, the same mixtures and selection
# without the log-magnitude loss (--mag-loss 0), the saved and scored weights a moving average
# (--ema 0.995), learning rate 8e-5 at epoch 36 decaying by the same factor every epoch; best
# epoch 83 (1.931 on the 32 selection mixtures; 1.828 on 96 fresh real-noise held-out
# mixtures, against 1.765 for epoch 35).
# Ran as: --epochs 75 --lr 2.7736e-4 --lr-final 2e-5, stopped after epoch 71 at a session's
# end, then resumed as --epochs 90 --lr 2.7736e-4 --lr-final 1.1725e-5 and stopped after
# epoch 84 (the two schedules differ by 0.1 % per epoch).
fork_best runs/gru256_rc runs/gru256_mag0
phase3=(--variant gru256 --speech "$DATA/speech" --noise "$DATA/noise" --batch 32 --seed 0 --cache runs/cache
        --out runs/gru256_mag0 --resume "${SECOND_PHASE[@]}" --mag-loss 0 --ema 0.995 --lr 2.7736e-4)
"$TFDENOISE" train "${phase3[@]}" --epochs 71 --lr-final 2.3054752968726012e-05
"$TFDENOISE" train "${phase3[@]}" --epochs 84 --lr-final 1.4512338897910244e-05

# Phase 4, epochs 84-143 (2026-12-02, run folder runs/g256_p4 then; 105 min alone on the
# machine): from phase 3's best (epoch 83) without its optimizer state, the same options with
# the learning rate raised to 6e-5 at epoch 84, decaying log-linearly to 1e-5 at epoch 143;
# best epoch 143 (1.973 on the 32 selection mixtures; 1.871 on the 96 fresh real-noise
# held-out mixtures, against 1.828 for epoch 83).
fork_best runs/gru256_mag0 runs/gru256_p4
"$TFDENOISE" train --variant gru256 --speech "$DATA/speech" --noise "$DATA/noise" --batch 32 --seed 0 \
    --cache runs/cache --out runs/gru256_p4 --resume "${SECOND_PHASE[@]}" --mag-loss 0 --ema 0.995 \
    --epochs 143 --lr 7.461714e-4 --lr-final 1e-5

# Ship runs/gru256_p4/best: replaces tfdenoise/pretrained/gru256 (weights, the six .tflite
# exports, MODEL_CARD.md and card.json measured on the bundled test pairs). The shipped card's
# history is the rows before the run's first epoch, taken from the card it replaces (phases
# 1-3: epochs 1-83), followed by runs/gru256_p4/history.json, which starts at epoch 84.
"$PYTHON" tools/ship_model.py runs/gru256_p4
