#!/usr/bin/env bash
# The GPU path of training and evaluation, checked against the CPU on the same machine:
#   bash benchmarks/gpu_check.sh [results folder, new: a run folder is never reused]
# 1. renders the crowd set of the recipe in experiments/crowd.md (256x448, 300 videos x 8 frames,
#    DIS) with one process per core; 2. trains the crowd classifier (20 epochs) on the GPU;
# 3. times 3 epochs on the GPU and on the CPU (all cores) for the speed-up; 4. trains the U-Net
# on the GPU; 5. evaluates NIMS on the test videos with device=cuda and device=cpu and checks that
# both give the same summary. Needs a CUDA build of PyTorch and a GPU; writes timings.txt.
set -euo pipefail
RESULTS=${1:-outputs/gpu_check}
PYTHON=${PYTHON:-python3}
CORES=$(nproc)
export WANDB_MODE=disabled PYTHONUNBUFFERED=1 NIMS_CACHE=${NIMS_CACHE:-/tmp/nims_gpu_cache}
mkdir -p "$RESULTS"
TIMINGS="$RESULTS/timings.txt"
DATA=${DATA:-dataset.videos=300 dataset.frames=8 dataset.size=[256,448]}
GPU=${GPU:-cuda}  # GPU=cpu rehearses the script on a machine without one
SET="task=crowd dataset=crowd_synth $DATA logger=none"

timed() {  # timed <label> <command...>: run, append "<label> <seconds>" to timings.txt
    local label=$1 start=$EPOCHREALTIME
    shift
    "$@"
    awk -v label="$label" -v start="$start" -v end="$EPOCHREALTIME" \
        'BEGIN { printf "%s %.1f s\n", label, end - start }' | tee -a "$TIMINGS"
}

$PYTHON -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
torch.cuda.get_device_name() if torch.cuda.is_available() else '-')" | tee "$TIMINGS"
echo "cores $CORES" | tee -a "$TIMINGS"
# flow=dis_fine: the crowd task's flow, the set train.py task=crowd reads (generate.py has no task)
timed render $PYTHON generate.py dataset=crowd_synth flow=dis_fine $DATA dataset.workers="$CORES" \
    hydra.run.dir="$RESULTS/generate"
timed train_gpu_20_epochs $PYTHON train.py $SET trainer.epochs=20 device=$GPU \
    progress=false hydra.run.dir="$RESULTS/classifier_gpu"
timed train_gpu_3_epochs $PYTHON train.py $SET trainer.epochs=3 device=$GPU \
    progress=false hydra.run.dir="$RESULTS/classifier_gpu_3"
timed train_cpu_3_epochs $PYTHON train.py $SET trainer.epochs=3 device=cpu \
    trainer.threads="$CORES" progress=false hydra.run.dir="$RESULTS/classifier_cpu_3"
timed train_unet_gpu_8_epochs $PYTHON train.py $SET model=unet trainer.epochs=8 \
    device=$GPU progress=false hydra.run.dir="$RESULTS/unet_gpu"
for device in $(printf '%s\n' "$GPU" cpu | sort -u); do  # once each, also when rehearsing on cpu
    timed "evaluate_nims_$device" $PYTHON evaluate.py $SET dataset=crowd_synth device=$device \
        threads="$CORES" progress=false checkpoint="$RESULTS/classifier_gpu/best.pt" \
        hydra.run.dir="$RESULTS/nims_$device"
done
timed evaluate_unet_gpu $PYTHON evaluate.py $SET dataset=crowd_synth method=unet device=$GPU \
    progress=false checkpoint="$RESULTS/unet_gpu/best.pt" hydra.run.dir="$RESULTS/unet_eval"
$PYTHON - "$RESULTS" "$GPU" <<'EOF'
import json, sys
from pathlib import Path
results = Path(sys.argv[1])
gpu, cpu = (json.loads((results / f"nims_{d}" / "summary.json").read_text()) for d in (sys.argv[2], "cpu"))
differing = {k: (gpu[k], cpu.get(k)) for k in gpu
             if isinstance(gpu[k], float) and abs(gpu[k] - (cpu.get(k) or 0)) > 1e-4}
print(f"evaluation {sys.argv[2]} vs cpu, keys differing by more than 1e-4:", differing or "none")
import re
for run in ("classifier_gpu_3", "classifier_cpu_3"):  # the training loop's own frames/s
    log = (results / run / "train.log").read_text() if (results / run / "train.log").is_file() else ""
    speeds = re.findall(r"\((\d+) training frames/s on (\w+)", log)
    print(run, "training frames/s per epoch:", speeds or "not logged")
for run in ("classifier_gpu", "classifier_gpu_3", "classifier_cpu_3", "unet_gpu"):
    print(run, (results / run / "test_metrics.json").read_text())
for run in (f"nims_{sys.argv[2]}", "unet_eval"):
    summary = json.loads((results / run / "summary.json").read_text())
    print(run, {k: v for k, v in summary.items() if isinstance(v, (int, float))})
EOF
