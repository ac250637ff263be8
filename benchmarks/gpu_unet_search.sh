#!/usr/bin/env bash
# How far a supervised U-Net gets on the default crowd set, searched on a GPU:
#   bash benchmarks/gpu_unet_search.sh [results folder]
# 1. renders the set of experiments/crowd.md (2400 videos x 2 frames at 256x448) with one
#    process per core and prints a checksum of its first video (to compare with another machine's
#    render of the same set); 2. trains at once on the GPU the crowd classifier's recipe (20 epochs,
#    against 12 min on the 2-core machine) and four U-Nets that separate three levers: the
#    documented recipe (128x224 input, channels 16-32-64, 5 epochs), the same for EPOCHS epochs
#    (training length), the whole 256x448 flow (resolution), and the whole flow with a wider,
#    deeper U-Net (capacity). Every training stops DEADLINE seconds after the render at the latest
#    (best.pt keeps the best epoch so far; a stopped run has no test pass). 3. ships each
#    best.pt with nims.export (no optimiser state: small enough to fetch) beside the logs.
# GPU=cpu DATA="dataset.videos=24 dataset.frames=2 dataset.size=[64,112]" EPOCHS=1 rehearses it.
set -uo pipefail
RESULTS=${1:-outputs/gpu_unet_search}
PYTHON=${PYTHON:-python3}
CORES=$(nproc)
export WANDB_MODE=disabled PYTHONUNBUFFERED=1 NIMS_CACHE=${NIMS_CACHE:-/tmp/nims_gpu_cache}
DATA=${DATA:-dataset.videos=2400 dataset.frames=2 dataset.size=[256,448]}
GPU=${GPU:-cuda}
EPOCHS=${EPOCHS:-20}
DEADLINE=${DEADLINE:-360}
FULL=${FULL:-[256,448]}  # the set's own size: the U-Net reads the flow unresized
SET="task=crowd dataset=crowd_synth $DATA logger=none progress=false device=$GPU"
THREADS=$((CORES / 5 > 0 ? CORES / 5 : 1))
mkdir -p "$RESULTS"
TIMINGS="$RESULTS/timings.txt"

$PYTHON -c "import cv2, torch; print('torch', torch.__version__, 'opencv', cv2.__version__,
'cuda', torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else '-')" |
    tee "$TIMINGS"
echo "cores $CORES" | tee -a "$TIMINGS"
start=$EPOCHREALTIME
# flow=dis_fine: the crowd task's flow (train.py task=crowd), which generate.py does not pick itself
$PYTHON generate.py dataset=crowd_synth flow=dis_fine $DATA dataset.workers="$CORES" \
    hydra.run.dir="$RESULTS/generate" || exit 1
awk -v s="$start" -v e="$EPOCHREALTIME" 'BEGIN { printf "render %.1f s\n", e - s }' | tee -a "$TIMINGS"
md5sum "$NIMS_CACHE"/crowd_synth-*/video_0000/flows.npy | tee -a "$TIMINGS"

train() {  # train <name> <overrides...>: one training in the background, timed, under the deadline
    local name=$1
    shift
    (
        local begin=$EPOCHREALTIME
        timeout -k 10 "$DEADLINE" $PYTHON train.py $SET trainer.threads="$THREADS" "$@" \
            hydra.run.dir="$RESULTS/$name" >"$RESULTS/$name.out" 2>&1
        local status=$?
        awk -v n="$name" -v s="$begin" -v e="$EPOCHREALTIME" -v r="$status" \
            'BEGIN { printf "%s %.1f s (exit %d)\n", n, e - s, r }' | tee -a "$TIMINGS"
    ) &
}
train classifier trainer.epochs=20
train unet_recipe model=unet model.input_size=[128,224] trainer.epochs=5
train unet_long model=unet model.input_size=[128,224] trainer.epochs="$EPOCHS"
train unet_full model=unet model.input_size="$FULL" trainer.epochs="$EPOCHS"
train unet_wide model=unet model.input_size="$FULL" model.channels=[32,64,128,256] \
    trainer.epochs="$EPOCHS"
wait

for run in classifier unet_recipe unet_long unet_full unet_wide; do
    if [ -f "$RESULTS/$run/best.pt" ]; then
        $PYTHON -m nims.export "$RESULTS/$run/best.pt" "$RESULTS/$run.pt" &&
            rm -f "$RESULTS/$run/best.pt" "$RESULTS/$run/last.pt"
        head -c 400 "$RESULTS/$run.json"  # the best epoch and the test pass, if it ran
        echo
    else
        echo "$run: no best.pt"
    fi
done
