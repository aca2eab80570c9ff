#!/usr/bin/env bash
# The privacy audit of docs/privacy.md (recllm bench privacy), from a fresh clone (2-core CPU).
# Short schedules: the teacher learns with a tenth of the users held out (the non-members),
# the student is distilled from it on the same split. Writes results/privacy/<dataset>.json
# (in process: teacher and student under every response policy) and
# results/privacy/<dataset>-http.json (the teacher's bundle served on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${RECLLM_DATA_DIR:-../shared/data}
export HF_HUB_OFFLINE=1

for DATASET in ml-100k amazon-beauty; do
    CONFIG=configs/quickstart.yaml
    [ "$DATASET" = amazon-beauty ] && CONFIG=configs/amazon-beauty.yaml
    recllm train $CONFIG data.dataset=$DATASET output_dir=runs/privacy/$DATASET-teacher \
        data.split.holdout_users=0.1 trainer.epochs=4 trainer.eval_every=2 \
        --data-dir "$DATA" --overwrite
    recllm distill configs/distill/$DATASET.yaml teacher=runs/privacy/$DATASET-teacher \
        output_dir=runs/privacy/$DATASET-student trainer.epochs=8 trainer.eval_every=4 \
        pre.epochs=1 --data-dir "$DATA" --overwrite
    recllm bench privacy runs/privacy/$DATASET-teacher \
        --students distilled=runs/privacy/$DATASET-student --pairs 1000 --aux-queries 1000 \
        --shadow-epochs 10 --data-dir "$DATA"
    recllm export runs/privacy/$DATASET-teacher --out runs/privacy/$DATASET-bundle \
        --overwrite --data-dir "$DATA"
    recllm bench privacy runs/privacy/$DATASET-bundle --checkpoint runs/privacy/$DATASET-teacher \
        --pairs 150 --budget 300 --aux-queries 300 --data-dir "$DATA"
done
recllm report
