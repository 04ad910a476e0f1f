#!/usr/bin/env bash
# Stage 2 of the 8-bit denoiser with the hidden state's int8 range learnt (std3), 6 epochs.
set -euo pipefail
cd "$(dirname "$0")/../.."
T=".venv/bin/tfdenoise"
D=../shared/data
common=(--variant lstm128 --speech $D/speech --noise $D/noise --batch 32 --seed 0 --cache runs/cache
        --segment 2.0 --segments-per-epoch 512 --snr 0 15 --snr-level active --exclude-noise 'voice/*'
        --synthetic-noise 0.4 --compressed-loss 3 --valid-pesq 16 --quiet)
[[ -f runs/qat/den8_s2c/.done ]] || { nice -n 5 $T train "${common[@]}" --out runs/qat/den8_s2c --qat-bits 8 --qat-stage 2 --init runs/qat/den8_s1/best --epochs 6 --lr 1e-5 && touch runs/qat/den8_s2c/.done; }
