#!/usr/bin/env bash
# 8-bit QAT that keeps the float model's quality: stage 1 barely moves the weights (one epoch at
# lr 1e-7: the float model on its 8-bit grid), stage 2 at lr 3e-6 (learnt std3 ranges), 6 epochs.
set -euo pipefail
cd "$(dirname "$0")/../.."
T=".venv/bin/tfdenoise"
D=../shared/data
common=(--variant lstm128 --speech $D/speech --noise $D/noise --batch 32 --seed 0 --cache runs/cache
        --segment 2.0 --segments-per-epoch 512 --snr 0 15 --snr-level active --exclude-noise 'voice/*'
        --synthetic-noise 0.4 --compressed-loss 3 --valid-pesq 16 --quiet)
run() { local out=$1; shift; [[ -f $out/.done ]] || { nice -n 5 $T train "${common[@]}" --out $out "$@" && touch $out/.done; }; }
run runs/qat/den8_s1z --qat-bits 8 --init tfdenoise/pretrained/lstm128 --epochs 1 --lr 1e-7
run runs/qat/den8_s2z --qat-bits 8 --qat-stage 2 --init runs/qat/den8_s1z/best --epochs 6 --lr 3e-6
