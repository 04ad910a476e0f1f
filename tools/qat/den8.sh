#!/usr/bin/env bash
# 8-bit two-stage QAT with asymmetric activation ranges (the input magnitudes and ReLU outputs on
# [0, 2 r], as `tfdenoise export --ranges asymmetric` lays them out), docs/qat.md:
#   den8a_s1    den5.sh's stage 1 (the same run folder and command; skipped when den5.sh made it):
#               one epoch at lr 1e-6 from the inverse-tanh start;
#   den8as_s2   stage 2, ranges learnt from the training batches (moving averages), lr 3e-6 -> 1e-6
#               over 10 epochs of 1024 segments (the measured run was stopped by hand after epoch
#               6, every epoch below epoch 1 on the selection mixtures; this script runs all 10,
#               and epoch 1, picked, sees the same learning rate either way);
#   den8ac_s2   the same with --qat-calib-ranges: the ranges fixed at the export's std3
#               calibration of den8a_s1 (the 4 reference clips), so the network trains on the
#               ranges its file holds;
#   den8r4a_s1 / den8r4ac_s2: 4-bit RNN weights, stage 1 = den7.sh's run (same folder and command),
#               stage 2 as den8ac_s2 over 5 epochs.
# Selection by PESQ on 32 held-out mixtures.
source "$(dirname "$0")/den_common.sh"
run runs/qat/den8a_s1 --qat-bits 8 --init tfdenoise/pretrained/lstm128 --epochs 1 --lr 1e-6 --valid-pesq 32
s2=(--qat-bits 8 --qat-stage 2 --qat-ranges asymmetric --init runs/qat/den8a_s1/best
    --epochs 10 --lr 3e-6 --lr-final 1e-6 --segments-per-epoch 1024 --valid-pesq 32)
run runs/qat/den8as_s2 "${s2[@]}"
run runs/qat/den8ac_s2 "${s2[@]}" --qat-calib-ranges
run runs/qat/den8r4a_s1 --qat-bits 8 --qat-layer-bits 'rnn_.*=4' --init tfdenoise/pretrained/lstm128 \
    --epochs 8 --lr 1e-5 --lr-final 3e-6 --valid-pesq 32
run runs/qat/den8r4ac_s2 --qat-bits 8 --qat-layer-bits 'rnn_.*=4' --qat-stage 2 --qat-ranges asymmetric \
    --qat-calib-ranges --init runs/qat/den8r4a_s1/best --epochs 5 --lr 3e-6 --lr-final 1e-6 \
    --segments-per-epoch 1024 --valid-pesq 32
