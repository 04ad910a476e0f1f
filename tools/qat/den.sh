#!/usr/bin/env bash
# Denoiser QAT runs for docs/qat.md, from the shipped LSTM128: 8-bit (every kernel) and 8-bit FCs
# with 4-bit RNN weights, stage 1 then stage 2, with the second-phase mixtures of tools/recipes/common.sh
# (fewer segments per epoch, 16 PESQ selection mixtures: the CPU budget).
source "$(dirname "$0")/den_common.sh"   # strict mode, root, T, D, common, run
run runs/qat/den8_s1 --qat-bits 8 --qat-latent-init copy --init tfdenoise/pretrained/lstm128 --epochs 3 --lr 1e-5
run runs/qat/den8_s2 --qat-bits 8 --qat-stage 2 --init runs/qat/den8_s1/best --epochs 3 --lr 1e-5
run runs/qat/den8r4_s1 --qat-bits 8 --qat-layer-bits 'rnn_.*=4' --qat-latent-init copy --init tfdenoise/pretrained/lstm128 --epochs 4 --lr 3e-6
run runs/qat/den8r4_s2 --qat-bits 8 --qat-layer-bits 'rnn_.*=4' --qat-stage 2 --init runs/qat/den8r4_s1/best --epochs 3 --lr 3e-6
