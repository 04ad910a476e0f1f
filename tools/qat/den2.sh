#!/usr/bin/env bash
# Stage 2 of the 8-bit denoiser again with std3 activation ranges (tfdenoise train's default since
# then) and 6 epochs; then the RNN 4-bit stage 2 continued to 6 epochs.
DONE=.done6   # this script's runs went on to 6 epochs
source "$(dirname "$0")/den_common.sh"   # strict mode, root, T, D, common, run
run runs/qat/den8_s2b --qat-bits 8 --qat-stage 2 --init runs/qat/den8_s1/best --epochs 6 --lr 1e-5
run runs/qat/den8r4_s2 --qat-bits 8 --qat-layer-bits 'rnn_.*=4' --qat-stage 2 --resume --epochs 6 --lr 3e-6
