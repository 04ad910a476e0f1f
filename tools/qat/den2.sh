#!/usr/bin/env bash
# Stage 2 of the 8-bit denoiser again with std3 activation ranges (tfdenoise train's default since
# then) and 6 epochs; then the RNN 4-bit stage 2 continued to 6 epochs.
set -euo pipefail
cd "$(dirname "$0")/../.."
T=".venv/bin/tfdenoise"
D=../shared/data
common=(--variant lstm128 --speech $D/speech --noise $D/noise --batch 32 --seed 0 --cache runs/cache
        --segment 2.0 --segments-per-epoch 512 --snr 0 15 --snr-level active --exclude-noise 'voice/*'
        --synthetic-noise 0.4 --compressed-loss 3 --valid-pesq 16 --quiet)
run() { local out=$1; shift; [[ -f $out/.done6 ]] || { nice -n 5 $T train "${common[@]}" --out $out "$@" && touch $out/.done6; }; }
run runs/qat/den8_s2b --qat-bits 8 --qat-stage 2 --init runs/qat/den8_s1/best --epochs 6 --lr 1e-5
run runs/qat/den8r4_s2 --qat-bits 8 --qat-layer-bits 'rnn_.*=4' --qat-stage 2 --resume --epochs 6 --lr 3e-6
