#!/usr/bin/env bash
# 8-bit two-stage QAT from the inverse-tanh start (stage 1 = the float weights linearly quantized
# per channel / gate): one stage-1 epoch at lr 1e-6, then stage 2 at lr 3e-6 -> 1e-6 over 20 epochs
# of 1024 segments, selection by PESQ on 32 held-out mixtures.
source "$(dirname "$0")/den_common.sh"
run runs/qat/den8a_s1 --qat-bits 8 --init tfdenoise/pretrained/lstm128 --epochs 1 --lr 1e-6 --valid-pesq 32
run runs/qat/den8a_s2 --qat-bits 8 --qat-stage 2 --init runs/qat/den8a_s1/best --epochs 20 \
    --lr 3e-6 --lr-final 1e-6 --segments-per-epoch 1024 --valid-pesq 32
