#!/usr/bin/env bash
# The serving benchmarks of docs/serving.md, in order, from a fresh clone (2-core CPU, no GPU).
# Each step writes what the next reads; `recllm bench serve` writes results/serve/<label>.json.
# Run with nothing else on the machine: the figures are latencies.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${RECLLM_DATA_DIR:-../shared/data}
export HF_HUB_OFFLINE=1
# Latency does not depend on how long a model trained, so every model here trains on a short
# schedule (the shipped architectures, few epochs): their accuracy is not a benchmark result.

# 1. ML-100K teacher with router and explainer (short schedules): the quick start's bundle.
recllm quickstart --data-dir "$DATA" --quiet trainer.epochs=3     # -> runs/quickstart-bundle

# 2. A distilled student of that teacher, its own explainer, and a bundle served by ONNX
#    Runtime when the graph ranks the test users' top 10 as PyTorch does and is faster.
recllm distill configs/distill/ml-100k.yaml teacher=runs/quickstart \
    output_dir=runs/distill/quickstart trainer.epochs=4 --data-dir "$DATA"
recllm train-explainer runs/distill/quickstart output_dir=runs/distill/quickstart-explainer \
    per_user=3 phrasings=2 epochs=3 schedule=short --data-dir "$DATA"
recllm export runs/quickstart --student runs/distill/quickstart --router runs/quickstart-router \
    --explainer runs/distill/quickstart-explainer --onnx --out runs/bundles/ml-100k-student \
    --overwrite --data-dir "$DATA"

# 3. A 27k-item SYNTHETIC catalogue (ML-20M-shaped data, one epoch: a speed test only).
#    Popularity is a steep power law: 20M interactions rate every one of the 27,278 items
#    (1M rate about 13k); each user trains on his last window only.
recllm data synth --out runs/synth27k/ml-20m --users 20000 --items 27278 \
    --interactions 20000000 --seed 0
recllm train configs/quickstart.yaml data.dataset=runs/synth27k/ml-20m \
    data.preprocess.min_item_interactions=1 trainer.windows=last output_dir=runs/synth27k/run \
    trainer.epochs=1 trainer.eval_every=1 --overwrite
recllm export runs/synth27k/run --out runs/bundles/synth27k --overwrite

# 4. The service over loopback, each bundle alone on the machine.
recllm bench serve --bundle runs/quickstart-bundle --label ml-100k-teacher
recllm bench serve --bundle runs/bundles/ml-100k-student --label ml-100k-student
recllm bench serve --bundle runs/bundles/ml-100k-student --label ml-100k-student-2-workers \
    --workers 2 --endpoints recommend
recllm bench serve --bundle runs/bundles/synth27k --label synthetic-27k --endpoints recommend explain

# 5. Amazon Beauty on a SHORT schedule (2 teacher epochs, 4 student epochs): the shipped
#    architectures (configs/amazon-beauty.yaml, configs/distill/amazon-beauty.yaml), so
#    the serving cost is theirs; the accuracy of these runs is not a benchmark result.
recllm train configs/amazon-beauty.yaml output_dir=runs/serve-beauty/teacher \
    trainer.epochs=2 trainer.eval_every=1 --data-dir "$DATA" --overwrite
recllm distill configs/distill/amazon-beauty.yaml teacher=runs/serve-beauty/teacher \
    output_dir=runs/serve-beauty/student trainer.epochs=4 --data-dir "$DATA" --overwrite
recllm train-explainer runs/serve-beauty/student output_dir=runs/serve-beauty/explainer \
    per_user=3 phrasings=2 epochs=3 schedule=short --data-dir "$DATA"
recllm train-router "catalogs=[amazon-beauty]" per_intent=300 epochs=1 student_epochs=1 \
    schedule=short output_dir=runs/serve-beauty/router --data-dir "$DATA"
recllm export runs/serve-beauty/teacher --student runs/serve-beauty/student \
    --router runs/serve-beauty/router --explainer runs/serve-beauty/explainer --onnx \
    --out runs/bundles/beauty-student --overwrite --data-dir "$DATA"
recllm bench serve --bundle runs/bundles/beauty-student --label amazon-beauty-student
recllm bench distill --checkpoint runs/serve-beauty/teacher \
    --students distilled=runs/serve-beauty/student --data-dir "$DATA" \
    --results-dir results/distill/short-schedule-beauty

# 6. Rank and explain as separate services on loopback (serve --role rank / explain): the
#    endpoints through the hop, and the hop alone (docs/scale.md).
recllm bench serve --bundle runs/bundles/ml-100k-student --label ml-100k-student-split --split \
    --endpoints explain ask
