# Sourced by the entry scripts: deliberate thread counts (2 cores; torch's default collapses
# under concurrent load, see ../shared/STACK.md) and W&B offline with no helper process.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
export WANDB_MODE=${WANDB_MODE:-offline}
export WANDB_X_DISABLE_STATS=${WANDB_X_DISABLE_STATS:-true}
export WANDB_SILENT=${WANDB_SILENT:-true}
export TQDM_MINITERS=${TQDM_MINITERS:-50}
