#!/usr/bin/env bash
# 8-bit FCs, 4-bit RNN weights from the inverse-tanh start: stage 1 at lr 1e-5 -> 3e-6 over 8
# epochs (4-bit RNN weights need training), then stage 2 at 3e-6 over 5 epochs; selection by
# PESQ on 32 held-out mixtures.
source "$(dirname "$0")/den_common.sh"
run runs/qat/den8r4a_s1 --qat-bits 8 --qat-layer-bits 'rnn_.*=4' --init tfdenoise/pretrained/lstm128 \
    --epochs 8 --lr 1e-5 --lr-final 3e-6 --valid-pesq 32
run runs/qat/den8r4a_s2 --qat-bits 8 --qat-layer-bits 'rnn_.*=4' --qat-stage 2 --init runs/qat/den8r4a_s1/best \
    --epochs 5 --lr 3e-6 --valid-pesq 32
