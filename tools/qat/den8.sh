#!/usr/bin/env bash
# 8-bit two-stage QAT with asymmetric activation ranges (the input magnitudes and ReLU outputs on
# [0, 2 r], as `tfdenoise export --ranges asymmetric` lays them out): stage 1 as den5.sh (one
# epoch at lr 1e-6 from the inverse-tanh start), then stage 2 with --qat-ranges asymmetric at
# lr 3e-6 -> 1e-6 over 10 epochs of 1024 segments, selection by PESQ on 32 held-out mixtures;
# the same with 4-bit RNN weights (stage 1 as den7.sh).
source "$(dirname "$0")/den_common.sh"
run runs/qat/den8a_s1 --qat-bits 8 --init tfdenoise/pretrained/lstm128 --epochs 1 --lr 1e-6 --valid-pesq 32
run runs/qat/den8as_s2 --qat-bits 8 --qat-stage 2 --qat-ranges asymmetric --init runs/qat/den8a_s1/best \
    --epochs 10 --lr 3e-6 --lr-final 1e-6 --segments-per-epoch 1024 --valid-pesq 32
run runs/qat/den8r4a_s1 --qat-bits 8 --qat-layer-bits 'rnn_.*=4' --init tfdenoise/pretrained/lstm128 \
    --epochs 8 --lr 1e-5 --lr-final 3e-6 --valid-pesq 32
run runs/qat/den8r4as_s2 --qat-bits 8 --qat-layer-bits 'rnn_.*=4' --qat-stage 2 --qat-ranges asymmetric \
    --init runs/qat/den8r4a_s1/best --epochs 5 --lr 3e-6 --valid-pesq 32
