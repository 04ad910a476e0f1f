#!/usr/bin/env bash
# Stage 2 of the 8-bit denoiser with the hidden state's int8 range learnt (std3), 6 epochs.
source "$(dirname "$0")/den_common.sh"   # strict mode, root, T, D, common, run
run runs/qat/den8_s2c --qat-bits 8 --qat-stage 2 --init runs/qat/den8_s1/best --epochs 6 --lr 1e-5
