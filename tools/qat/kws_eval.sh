#!/usr/bin/env bash
# Accuracy and DET of every KWS form in docs/qat.md (tfdenoise kws evaluate, default data/stream).
set -uo pipefail
cd "$(dirname "$0")/../.."
T=".venv/bin/tfdenoise"; O=out/qat
ev() { [[ -f $O/eval_$1.json ]] || nice -n 10 $T kws evaluate --model "$2" --json $O/eval_$1.json > $O/eval_$1.log 2>&1; }
exp() { [[ -f $2 ]] || nice -n 10 $T export "$1" --recipe "$3" -o "$2" --json "${2%.tflite}.export.json" > "${2%.tflite}.export.log" 2>&1; }
ev kws_float tfdenoise/pretrained/kws_dnn
ev kws_fp32_tflite tfdenoise/pretrained/kws_dnn/tflite/kws_dnn_fp32.tflite
ev kws_int8_tflite tfdenoise/pretrained/kws_dnn/tflite/kws_dnn_int8.tflite
exp tfdenoise/pretrained/kws_dnn $O/kws_dnn_int8fsm.tflite kws_int8_float_softmax
ev kws_int8fsm_tflite $O/kws_dnn_int8fsm.tflite
for b in "$@"; do
  [[ -d runs/qat/kws_b${b}_s2/best ]] || continue
  exp runs/qat/kws_b${b}_s2/best $O/kws_dnn_qat${b}.tflite $([[ $b == 4 ]] && echo kws_qat4 || echo kws_int8_float_softmax)
  [[ $b != 4 ]] || ev kws_qat${b}_keras runs/qat/kws_b${b}_s2/best  # the Keras side once (CPU time)
  ev kws_qat${b}_tflite $O/kws_dnn_qat${b}.tflite
done
