#!/usr/bin/env bash
# The GPU figures in one call, in about 8 minutes on one H100 or H200: the machine, the CUDA tests, the
# 50-trial checkbox study of `make run`, hpsearch against the plain Optuna script (benchmarks/study.py),
# each model's share of its synthetic limit and the fixed cost per trial (benchmarks/limit.py), and
# --jobs 1, 2 and 4 on the one GPU. Full logs go to LOGS; a short table is printed last, and written to
# LOGS/table.md row by row, so that a call cut short still brings back what it measured. Each step has a
# time limit, 9 minutes in all; where one stops it, its row reads what its storage holds by then.
#
#     benchmarks/gpu.sh --wheels       # here, with a package registry: the wheels a bare GPU machine lacks
#     benchmarks/gpu.sh LOGS           # on the GPU
#     benchmarks/gpu.sh LOGS --quick   # the same steps, few trials, on the CPU: to try the script first
#
# A GPU machine with Python 3.12 and torch, timm, pandas and scikit-learn, but not Optuna and the rest,
# installs them from the wheels in .whl/ (ignored by git), the versions this checkout's .venv has.
set -uo pipefail
cd "$(dirname "$0")/.."

# what such a machine lacks, without what they need that it has (numpy, torch, timm, huggingface-hub, ...)
WHEELS="optuna optuna-dashboard sqlalchemy alembic mako colorlog bottle fastapi starlette pydantic pydantic-core
annotated-types typing-inspection opentelemetry-api uvicorn python-multipart segmentation-models-pytorch plotly"
if [ "${1:-}" = "--wheels" ]; then
    for name in $WHEELS; do
        version=$(.venv/bin/pip show "$name" | awk '/^Version:/ {print $2}')
        python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
            --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
            -d .whl "$name==$version" || exit 1
    done
    du -sh .whl
    exit 0
fi
LOGS=$(realpath -m "${1:?usage: benchmarks/gpu.sh LOGS [--quick]}")
mkdir -p "$LOGS"
TABLE="$LOGS/table.md"
: >"$TABLE"
WORK=$(mktemp -d)  # the decoded images and the studies, not brought back
export PYTHONUNBUFFERED=1 HPSEARCH_CACHE="$WORK/cache"

if [ "${2:-}" = "--quick" ]; then
    DEVICE=cpu TRIALS=2 EPOCHS=(--epochs 1) PLAIN=(--trials 1 --seeds 0 --epochs 1) LIMIT=(--steps 3 --epochs 1 --models baseline)
    JOB_TRIALS=2 SLOWER=4  # the CPU is slower: every step's time limit times 4
else
    DEVICE=cuda TRIALS=50 EPOCHS=() PLAIN=(--trials 6 --seeds 0) LIMIT=(--steps 30 --epochs 2) JOB_TRIALS=12 SLOWER=1
fi

if ! python3 -c "import optuna, optuna_dashboard, fastapi, segmentation_models_pytorch" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir .whl/*.whl || exit 1
fi
if [ ! -x "$(dirname "$(command -v python3)")/hpsearch" ]; then  # the tests run the `hpsearch` beside their Python
    python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . || exit 1
fi

row() { echo "| $1 | $2 |" | tee -a "$TABLE"; }

step() {  # step NAME LIMIT_SECONDS COMMAND...: run it, its output in LOGS/NAME.log, say how long it took
    local name=$1 limit=$2 start=$SECONDS
    shift 2
    echo "== $name: $*"
    timeout $((limit * SLOWER)) "$@" >"$LOGS/$name.log" 2>&1
    local code=$?
    echo "   exit $code after $((SECONDS - start)) s"
    return $code
}

row "machine" "$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "no GPU"); $(
    python3 -c "import torch, optuna; print('torch', torch.__version__, 'CUDA', torch.version.cuda, 'optuna', optuna.__version__)")"

if step cuda-tests 60 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py; then :; fi
row "tests/test_cuda.py" "$(tail -1 "$LOGS/cuda-tests.log")"

study_figures() {  # study_figures STORAGE STUDY SECONDS: trials/hour, pruned, the best trial's test weighted F1
    python3 - "$@" <<'EOF'
import sys

import optuna

from search.record import StudyRecord

storage, name, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
study = optuna.load_study(study_name=name, storage=storage)
finished = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
pruned = sum(t.state.name == "PRUNED" for t in finished)
test = StudyRecord.read(study).best_evaluation["table"]["test"]["f1_weighted"] if name == "checkbox" else None
print(f"{seconds:.0f} s, {3600 * len(finished) / seconds:.0f} trials/hour, {len(finished)} trials, {pruned} pruned"
      + (f", best trial {study.best_trial.number}: test weighted F1 {test:.3f}" if test is not None else ""))
EOF
}

start=$SECONDS
step study 150 hpsearch run --space checkbox --trials "$TRIALS" "${EPOCHS[@]}" --device "$DEVICE" --quiet \
    --storage "sqlite:///$WORK/studies.db" --artifacts "$WORK/artifacts"
row "checkbox, $TRIALS trials (\`hpsearch run --space checkbox --trials $TRIALS\`)" \
    "$(study_figures "sqlite:///$WORK/studies.db" checkbox $((SECONDS - start)))"

step plain 100 python3 benchmarks/study.py --device "$DEVICE" "${PLAIN[@]}"
row "against the plain Optuna script (\`benchmarks/study.py ${PLAIN[*]}\`)" "$(tail -1 "$LOGS/plain.log")"

step limit 80 python3 benchmarks/limit.py --device "$DEVICE" "${LIMIT[@]}"
row "share of the synthetic limit, batch 64 (\`benchmarks/limit.py\`)" \
    "$(awk '$2 == 64 {printf "%s %s; ", $1, $NF}' "$LOGS/limit.log")"
row "fixed cost per trial" "$(awk '/^fixed cost/ {on = 1; next} on && NF == 3 {printf "%s %s s; ", $1, $2}' "$LOGS/limit.log")"

for jobs in 1 2 4; do
    start=$SECONDS
    step "jobs$jobs" 50 hpsearch run --space checkbox --trials "$JOB_TRIALS" "${EPOCHS[@]}" --jobs "$jobs" \
        --device "$DEVICE" --quiet --storage "sqlite:///$WORK/jobs.db" --new-study "jobs$jobs" --artifacts "$WORK/artifacts"
    row "--jobs $jobs, $JOB_TRIALS trials" "$(study_figures "sqlite:///$WORK/jobs.db" "jobs$jobs" $((SECONDS - start)))"
done
rm -rf "$WORK"

echo
echo "| what | figure |"
echo "| --- | --- |"
cat "$TABLE"
