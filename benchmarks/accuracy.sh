#!/usr/bin/env bash
# Every accuracy row of docs/accuracy.md's comparison with SASRec-CE, from a fresh clone
# (2-core CPU): two lanes of one thread each, side by side. Each model's learning rate is
# searched on seed 0 (0.5x, 1x, 2x its config's, and past an end of that grid where the best
# lies, up to two more steps) and rerun on seeds 1 and 2; ideas not yet adopted run once at
# that rate; the Beauty ablations run over the same seeds at it; the cold-start split and
# ML-1M (the costliest) run once, to early stopping.
#
# Days of CPU in all (a Beauty RecLLM-Adapter run alone takes about an hour). Every step
# resumes: finished trials are reused from their run folders or from the records kept
# under results/<dataset>/trials/, and a trial cut off mid-run continues from its last
# checkpoint. So rerun this script after an interruption, and commit results/ as it goes.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${RECLLM_DATA_DIR:-../shared/data}
export HF_HUB_OFFLINE=1
SET=(trainer.num_threads=1 trainer.progress=false)
ONE_THREAD=(--set "${SET[@]}" --data-dir "$DATA")
SEEDS=(--lr-factors 0.5 1 2 --extend-edges 2 --seeds 0 1 2)
mkdir -p runs

lane_recllm() {
    # the rate search alone first (seed 0), so the ideas can run at its rate before seeds
    # 1 and 2: the search's record is then rewritten as the three-seed one
    # (an idea the shipped config has since adopted ran under its own name in results/ideas:
    # --reuse-from takes those runs where the configs now train the same)
    recllm bench accuracy --dataset amazon-beauty --models recllm-adapter --lr-factors 0.5 1 2 \
        --extend-edges 2 --seeds 0 --reuse-from results/ideas "${ONE_THREAD[@]}"
    local lr
    lr=$(python -c "import json; print(json.load(open('results/amazon-beauty/recllm-adapter.json'))['config']['trainer']['lr'])")
    # ideas not yet adopted, one seed at the searched rate, judged on validation: the
    # cheap ones (text-initialised IDs, AlphaFuse's null space, text alignment: each aims at
    # the tail targets, where the model trails SASRec-CE; a stronger ID dropout, so more of
    # each item rests on its text, likewise) first; then an item-age vector, for the new
    # products where the model trails most (docs/accuracy.md)
    recllm bench accuracy --dataset amazon-beauty --models recllm-adapter-text-init \
        recllm-adapter-null-space recllm-adapter-text-alignment \
        recllm-adapter-id-dropout-0.75 recllm-adapter-id-dropout-0.9 \
        recllm-adapter-item-age --seeds 0 \
        --runs-dir runs/ideas-bench --results-dir results/ideas --set "${SET[@]}" \
        "trainer.lr=$lr" --data-dir "$DATA"
    # item age groups (seed 0: valid N@10 above the shipped config's best by epoch 10,
    # results/ideas/amazon-beauty/): their seeds 1 and 2 first
    recllm bench accuracy --dataset amazon-beauty --models recllm-adapter-item-age \
        --seeds 0 1 2 --runs-dir runs/ideas-bench --results-dir results/ideas \
        --set "${SET[@]}" "trainer.lr=$lr" --data-dir "$DATA"
    recllm bench accuracy --dataset amazon-beauty --models recllm-adapter "${SEEDS[@]}" \
        --reuse-from results/ideas "${ONE_THREAD[@]}"
    # the ideas that beat the shipped config on validation (seed 0, N@10 against 0.0673,
    # results/ideas/amazon-beauty/): ID dropout 0.75 (0.0686, by more than the seeds differ)
    # and text-initialised IDs (0.0682): their seeds 1 and 2, for the three-seed comparison
    recllm bench accuracy --dataset amazon-beauty --models recllm-adapter-id-dropout-0.75 \
        recllm-adapter-text-init --seeds 0 1 2 --runs-dir runs/ideas-bench \
        --results-dir results/ideas --set "${SET[@]}" "trainer.lr=$lr" --data-dir "$DATA"
    # then the backbone tuned by LoRA or in full (slower)
    recllm bench accuracy --dataset amazon-beauty --models recllm-adapter-lora \
        recllm-adapter-full-backbone --seeds 0 --runs-dir runs/ideas-bench \
        --results-dir results/ideas --set "${SET[@]}" "trainer.lr=$lr" --data-dir "$DATA"
    # Beauty ablations over the same seeds, at the full model's searched rate
    recllm bench accuracy --dataset amazon-beauty --models ablation-no-id-dropout \
        ablation-no-cross-attention ablation-no-behaviour-weights ablation-no-metadata \
        ablation-no-user-vector --seeds 0 1 2 --runs-dir runs/ablations --results-dir results/ablations \
        --set "${SET[@]}" "trainer.lr=$lr" --data-dir "$DATA"
}

lane_baselines() {
    recllm bench accuracy --dataset amazon-beauty --models sasrec-ce "${SEEDS[@]}" \
        "${ONE_THREAD[@]}"
    # the control for item age groups: SASRec-CE with the same groups, at its searched rate
    # (before ML-100K's longer runs: seed 0 is level with ours on test N@10, so its seeds)
    local lr
    lr=$(python -c "import json; print(json.load(open('results/amazon-beauty/sasrec-ce.json'))['config']['trainer']['lr'])")
    recllm bench accuracy --dataset amazon-beauty --models sasrec-ce-item-age --seeds 0 1 2 \
        --runs-dir runs/ideas-bench --results-dir results/ideas --set "${SET[@]}" \
        "trainer.lr=$lr" --data-dir "$DATA"
    recllm bench accuracy --dataset ml-100k --models sasrec-ce recllm-adapter "${SEEDS[@]}" \
        "${ONE_THREAD[@]}"
    # the cold-start split of docs/cold-start.md: the shipped (ID-dropout) config, and
    # with a learned stand-in for the IDs that cold items lack
    recllm bench accuracy --dataset amazon-beauty --models recllm-adapter \
        recllm-adapter-missing-id --seeds 0 --runs-dir runs/cold-start-v2 \
        --results-dir results/cold-start --set "${SET[@]}" data.split.protocol=cold_start \
        --data-dir "$DATA"
    recllm bench accuracy --dataset ml-1m --models sasrec-ce recllm-adapter --seeds 0 \
        "${ONE_THREAD[@]}"
}

lane_recllm > runs/accuracy-recllm.log 2>&1 &
recllm_lane=$!
lane_baselines > runs/accuracy-baselines.log 2>&1 &
baselines_lane=$!
status=0
wait "$recllm_lane" || status=$?
wait "$baselines_lane" || status=$?
recllm report
exit "$status"
