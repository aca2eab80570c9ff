#!/usr/bin/env bash
# The student of one teacher run, as docs/distillation.md reports it: the shipped student
# recipe (configs/distill/DATASET.yaml) on seeds 0, 1 and 2, the same student trained
# alone (no teacher), then `recllm bench distill` against the teacher with the student
# seed of the best validation NDCG@10.
#
#   benchmarks/distill.sh [--students-only] DATASET TEACHER_RUN NAME
#
# --students-only stops after the students, for a machine that is busy with other training:
# the bench step times serving, so run it again without the flag once the machine is quiet.
#
# Each run's record goes to results/distill/teacher-NAME/DATASET/, the bench's to
# results/distill/DATASET.json. A student whose record is there, from the same teacher,
# is not trained again, and one cut off mid-run continues from its last checkpoint, so a
# rerun resumes. The bench times serving: nothing else may run on the machine during its
# step (the students' training may share it).
set -euo pipefail
cd "$(dirname "$0")/.."
students_only=false
if [[ ${1:-} == --students-only ]]; then
    students_only=true
    shift
fi
if [[ $# -ne 3 ]]; then
    echo "usage: $0 [--students-only] DATASET TEACHER_RUN NAME" >&2
    exit 2
fi
DATASET=$1 TEACHER=$2 NAME=$3
DATA=${RECLLM_DATA_DIR:-../shared/data}
export HF_HUB_OFFLINE=1
RECORDS=results/distill/teacher-$NAME
RUNS=runs/distill/teacher-$NAME-$DATASET

# the record of run NAME under RECORDS, if it was distilled from TEACHER
trained() {
    python - "$RECORDS/$DATASET/$1.json" "$TEACHER" <<'EOF'
import json, sys
from pathlib import Path
record = Path(sys.argv[1])
sys.exit(not (record.is_file() and json.loads(record.read_text())["distill"]["teacher"] == sys.argv[2]))
EOF
}

# --resume when FOLDER holds a run cut off while distilling from TEACHER, else --overwrite
# (recllm distill refuses to resume a run whose settings differ)
continuation() {
    python - "$1/distill_config.json" "$TEACHER" <<'EOF'
import json, sys
from pathlib import Path
saved = Path(sys.argv[1])
same = saved.is_file() and json.loads(saved.read_text())["teacher"] == sys.argv[2]
print("--resume" if same else "--overwrite")
EOF
}

student() {  # record name, run folder, overrides...
    local name=$1 folder=$2
    shift 2
    trained "$name" && return
    recllm distill "configs/distill/$DATASET.yaml" "teacher=$TEACHER" "$@" \
        trainer.num_threads=1 trainer.progress=false "output_dir=$folder" \
        "$(continuation "$folder")" --data-dir "$DATA" --results-dir "$RECORDS" --name "$name"
}

student distilled "$RUNS"
student distilled-seed-1 "$RUNS-seed-1" trainer.seed=1
student distilled-seed-2 "$RUNS-seed-2" trainer.seed=2
student alone "$RUNS-alone" distill.kl_weight=0 distill.attention_weight=0 pre.epochs=0 \
    student.init=random
if $students_only; then
    echo "students trained; rerun without --students-only on a quiet machine for the bench"
    exit 0
fi

best=$(python - "$RECORDS/$DATASET" <<'EOF'
import json, sys
from pathlib import Path
records = [json.loads(p.read_text()) for p in Path(sys.argv[1]).glob("distilled*.json")]
print(max(records, key=lambda r: r["valid_best"]["ndcg@10"])["distill"]["config"]["output_dir"])
EOF
)
echo "student with the best validation NDCG@10: $best"
recllm bench distill --checkpoint "$TEACHER" --students "distilled=$best" \
    "alone=$RUNS-alone" --data-dir "$DATA"
