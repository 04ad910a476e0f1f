#!/usr/bin/env bash
# 8-bit stage 2 from the inverse-tanh stage 1 (den8a_s1), training fc_in only (the layer on the
# int8-quantized magnitudes; the others keep the float model's weights on their 8-bit grid):
# lr 1e-5 -> 3e-6 over 12 epochs of 512 segments, selection by PESQ on 32 held-out mixtures.
source "$(dirname "$0")/den_common.sh"
run runs/qat/den8f_s2 --qat-bits 8 --qat-stage 2 --init runs/qat/den8a_s1/best --qat-train-layers fc_in \
    --epochs 12 --lr 1e-5 --lr-final 3e-6 --valid-pesq 32
