#!/usr/bin/env bash
# 8-bit QAT that keeps the float model's quality: stage 1 barely moves the weights (one epoch at
# lr 1e-7: the float model on its 8-bit grid), stage 2 at lr 3e-6 (learnt std3 ranges), 6 epochs.
source "$(dirname "$0")/den_common.sh"   # strict mode, root, T, D, common, run
run runs/qat/den8_s1z --qat-bits 8 --qat-latent-init copy --init tfdenoise/pretrained/lstm128 --epochs 1 --lr 1e-7
run runs/qat/den8_s2z --qat-bits 8 --qat-stage 2 --init runs/qat/den8_s1z/best --epochs 6 --lr 3e-6
