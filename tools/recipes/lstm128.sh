#!/usr/bin/env bash
# Reproduce the shipped LSTM128 (tfdenoise/pretrained/lstm128): the nine training phases of
# its model card as the `tfdenoise train` commands they ran with, then tools/ship_model.py.
# Why each phase exists, and what was tried and dropped: docs/training.md.
#
#   tools/recipes/lstm128.sh                      # data from ../shared/data (project-relative)
#   DATA=/path/to/data tools/recipes/lstm128.sh   # any folder with speech/ and noise/ in that layout
#
# Cost: 185 epochs, 433.5 min of training on a 2-core x86_64 CPU without a GPU (epochs 1-20
# shared the machine with the GRU128, GRU256 and LSTM256 runs). Re-running the script after
# an interruption continues where it stopped: every phase resumes its run folder (--resume)
# up to the phase's last epoch, a finished phase trains nothing, and a fork copies a folder
# only once. The result is the same recipe, not bit-identical weights (TensorFlow's CPU
# kernels are not deterministic across machines and thread counts).
#
# Learning rates: --lr/--lr-final decay log-linearly over --epochs, as a function of the epoch
# index, so a resumed run gets the rate the uninterrupted one would have had. Several runs were
# stopped by hand before their --epochs; today's flags have no "stop after epoch N", so those
# phases end at --epochs N with --lr-final set to the rate the original schedule gave epoch N
# (the original flags are in the comment above each such command). This reproduces every
# recorded per-epoch learning rate of card.json exactly (relative error < 1e-15).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"   # strict mode, project root, DATA/TFDENOISE/PYTHON

# Options every phase shares: batch 32, seed 0, one decoded-audio cache for all runs.
common=(--variant lstm128 --speech "$DATA/speech" --noise "$DATA/noise" --batch 32 --seed 0 --cache runs/cache)

# fork SRC DST: a new run folder that continues SRC from its last epoch (checkpoints and
# history), so the next phase's changed options start from there.
fork() { [[ -d "$2" ]] || { cp -r "$1" "$2.tmp" && mv "$2.tmp" "$2"; }; }

# Phase 1, epochs 1-20: 1024 x 1 s segments at 0-15 dB SNR by segment mean power (the only
# SNR level then), constant learning rate 1e-3; best by validation loss (epoch 19, 0.5937).
start=(); [[ -d runs/lstm128/last ]] && start=(--resume)   # a fresh run, or its continuation on a re-run
"$TFDENOISE" train "${common[@]}" --out runs/lstm128 --epochs 20 --lr 1e-3 \
    --segment 1 --segments-per-epoch 1024 --snr 0 15 --snr-level mean "${start[@]}"

# Phase 2a, epochs 21-28: 4x more segments per epoch, learning rate decaying from 1e-3 (at
# epoch 1) towards 1e-4; still best by validation loss.
# Ran as: --epochs 80 --lr 1e-3 --lr-final 1e-4, stopped after epoch 28.
"$TFDENOISE" train "${common[@]}" --out runs/lstm128 --epochs 28 --lr 1e-3 --lr-final 0.00045522682755073105 \
    --segment 1 --segments-per-epoch 4096 --snr 0 15 --snr-level mean --resume

# Phase 2b, epochs 29-42: best checkpoint by PESQ on 32 held-out mixtures from now on
# (--valid-pesq; epoch 41, 2.150), a new schedule from 1e-3 towards 1e-4 over 70 epochs.
# Ran as: --epochs 70 --lr 1e-3 --lr-final 1e-4, stopped after epoch 42.
"$TFDENOISE" train "${common[@]}" --out runs/lstm128 --epochs 42 --lr 1e-3 --lr-final 0.00025456406738604155 \
    --segment 1 --segments-per-epoch 4096 --snr 0 15 --snr-level mean --valid-pesq 32 --resume

# Phase 3, epochs 43-80: 2048 x 2 s segments (same audio per epoch, twice the recurrent
# context), 1e-3 -> 1e-4 over 80 epochs; ran to the end (best epoch 62, held-out 2.191).
"$TFDENOISE" train "${common[@]}" --out runs/lstm128 --epochs 80 --lr 1e-3 --lr-final 1e-4 \
    --segment 2 --segments-per-epoch 2048 --snr 0 15 --snr-level mean --valid-pesq 32 --resume

# Phase 4, epochs 81-86 (runs/lstm128_snr, from epoch 80 of runs/lstm128): SNR floor lowered
# to -5 dB, constant 1e-4 (best epoch 84, held-out 2.216).
# Ran as: --epochs 100, stopped after epoch 86 (constant rate: the same rates).
fork runs/lstm128 runs/lstm128_snr
"$TFDENOISE" train "${common[@]}" --out runs/lstm128_snr --epochs 86 --lr 1e-4 \
    --segment 2 --segments-per-epoch 2048 --snr -5 15 --snr-level mean --valid-pesq 32 --resume

# Phase 5, epochs 87-119 (runs/lstm128_nv, from epoch 86 of runs/lstm128_snr): SNR on the
# active speech level and the 'voice' noise category left out; the held-out set changes with
# them, so the best score restarts (best epoch 104, held-out 1.997). --lr is the start of a
# log-linear schedule that gives epoch 87 1e-4.
# Ran as: --epochs 136 --lr 0.001685 --lr-final 2e-5, stopped after epoch 119.
fork runs/lstm128_snr runs/lstm128_nv
"$TFDENOISE" train "${common[@]}" --out runs/lstm128_nv --epochs 119 --lr 0.001685 --lr-final 3.495498897276284e-05 \
    --segment 2 --segments-per-epoch 2048 --snr 0 15 --snr-level active --exclude-noise 'voice/*' \
    --valid-pesq 32 --resume

# Phase 6, epochs 120-153 (runs/lstm128_syn, from epoch 119 of runs/lstm128_nv): 20 % of the
# noise segments babble / speech-shaped noise, learning rate raised to 2e-4 at epoch 120
# (best epoch 144, held-out 2.044).
# Ran as: --epochs 160 --lr 0.05651 --lr-final 3e-5, stopped after epoch 153.
fork runs/lstm128_nv runs/lstm128_syn
"$TFDENOISE" train "${common[@]}" --out runs/lstm128_syn --epochs 153 --lr 0.05651 --lr-final 4.181227740471472e-05 \
    --segment 2 --segments-per-epoch 2048 --snr 0 15 --snr-level active --exclude-noise 'voice/*' \
    --synthetic-noise 0.2 --valid-pesq 32 --resume

# Phase 7, epochs 154-162 (runs/lstm128_syn4, from epoch 153 of runs/lstm128_syn): 40 %
# babble / speech-shaped noise, 1e-4 at epoch 154 (best epoch 162, held-out 1.980).
# Ran as: --epochs 185 --lr 0.2816794620766854 --lr-final 2e-5, stopped after epoch 172; the
# shipped model continues from epoch 162 (epochs 163-172 of this run scored 1.944-1.968 and
# were not used), so the recipe stops at 162.
fork runs/lstm128_syn runs/lstm128_syn4
"$TFDENOISE" train "${common[@]}" --out runs/lstm128_syn4 --epochs 162 --lr 0.2816794620766854 --lr-final 6.601165846765103e-05 \
    --segment 2 --segments-per-epoch 2048 --snr 0 15 --snr-level active --exclude-noise 'voice/*' \
    --synthetic-noise 0.4 --valid-pesq 32 --resume

# Phase 8, epochs 163-185 (runs/lstm128_comp, from epoch 162 of runs/lstm128_syn4): + 3 x
# power-law compressed spectral loss, 5e-5 at epoch 163 (best epoch 180, held-out 2.037: the
# shipped checkpoint).
# Ran as: --epochs 202 --lr 0.002248803863972805 --lr-final 2e-5, stopped after epoch 185.
# How it was forked is not recorded. When it started, runs/lstm128_syn4/last/ was already at
# epoch 172, so unless a copy was kept, epoch 162 came from runs/lstm128_syn4/best/ (weights
# and config, no optimizer/ state; train() then starts Adam's moments afresh) with
# history.json cut to its first 162 rows (card.json's history is exactly that). The recipe
# does the same from last/ at epoch 162, dropping its optimizer/ state.
if [[ ! -d runs/lstm128_comp ]]; then
    mkdir -p runs/lstm128_comp.tmp
    cp -r runs/lstm128_syn4/last runs/lstm128_comp.tmp/last
    rm -rf runs/lstm128_comp.tmp/last/optimizer
    cp runs/lstm128_syn4/history.json runs/lstm128_comp.tmp/history.json
    mv runs/lstm128_comp.tmp runs/lstm128_comp
fi
"$TFDENOISE" train "${common[@]}" --out runs/lstm128_comp --epochs 185 --lr 0.002248803863972805 --lr-final 2.981885925109775e-05 \
    --segment 2 --segments-per-epoch 2048 --snr 0 15 --snr-level active --exclude-noise 'voice/*' \
    --synthetic-noise 0.4 --compressed-loss 3 --valid-pesq 32 --resume

# Ship runs/lstm128_comp/best: replaces tfdenoise/pretrained/lstm128 (weights, the six .tflite
# exports, MODEL_CARD.md and card.json measured on the bundled test pairs; `git diff` compares
# them with the shipped ones).
"$PYTHON" tools/ship_model.py runs/lstm128_comp
