"""The study folder's layout and the parquet columns: the one place these names live.

A study folder (`<storage>/<study name>/`) holds:

- `metadata.json`: resolved config, derived strategy numbers, versions, git commit, hardware,
  carbon/price inputs.
- `reports.parquet`: one row per trial report (written as trials report).
- `trials.parquet`: one row per trial (config, status, final and best metrics).
- Tune's own experiment state (`experiment_state-*.json`, trial folders), which `--resume` needs.
- `train_runs/`: the Ray Train run folders (model checkpoints) of every trial segment.
- `cluster_energy.json`: the whole-cluster meter's reading so far, rewritten after every poll;
  `metadata.json` gets the final one (with interrupted runs as `previous_runs`).

Units are in the column names. Energy figures come with a `*_source` column saying how they were
obtained: `counter` (NVML cumulative energy), `power_integral` (sampled power, integrated),
`estimated` (a stated model, e.g. TDP x CPU-time share), or missing where nothing was measured.
ROUGE scores are F-measures in [0, 1].
"""

METADATA_FILE = "metadata.json"
REPORTS_FILE = "reports.parquet"
TRIALS_FILE = "trials.parquet"
TRAIN_RUNS_DIR = "train_runs"
CLUSTER_ENERGY_FILE = "cluster_energy.json"
PBT_DECISIONS_FILE = (
    "pbt_decisions.parquet"  # every PBT exploit decision: who, whom, at which score
)
BEST_MODEL_DIR = "best_model"  # the selected model: save_pretrained's files and a model card
MODEL_CARD_FILE = "README.md"  # in BEST_MODEL_DIR: Hugging Face's model card, with its CO2
TEST_SCORES_FILE = "test_scores.parquet"  # the selected model on the held-out split, per example
# what greentune writes into a study folder itself (beside Tune's state and the trial folders);
# with a URI storage each is written on the head and copied to the URI after every write
RESULT_FILES = (
    METADATA_FILE,
    REPORTS_FILE,
    TRIALS_FILE,
    CLUSTER_ENERGY_FILE,
    PBT_DECISIONS_FILE,
    TEST_SCORES_FILE,
)


def run_name(trial_id: str, segment: int, tag: str) -> str:
    """A Train run's folder under train_runs/: one per trial segment."""
    return f"{trial_id}-s{segment}-{tag}"


def parse_run_name(path: str) -> tuple[str, int]:
    """(trial id, segment) of a run folder (a name or a path ending in one)."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    trial_id, rest = name.split("-s", 1)
    return trial_id, int(rest.split("-", 1)[0])


TRIAL_TOTALS_DIR = "trial_totals"  # each trial's running totals over its segments (the driver's)

# Prefix of the per-trial hyperparameters in both tables: `config/lr`, `config/batch_size`, ...
CONFIG_PREFIX = "config/"

# Identity of a row
STUDY = "study"
STRATEGY = "strategy"
SEED = "seed"
TRIAL_ID = "trial_id"
REPORT_ID = "report_id"  # unique per report (a trial's iteration repeats after a PBT exploit)
ITERATION = "training_iteration"  # Tune's count of this trial's reports
SEGMENT = "segment"  # Train runs this trial started (1 + PBT exploits + restarts)
RESTORED_FROM = "restored_from_trial"  # the trial whose checkpoint this segment started from
RESTORED_FROM_SCORE = "restored_from_score"  # the search metric of that checkpoint's report
RESTORED_FROM_ITERATION = "restored_from_iteration"  # that report's number in its trial
CHECKPOINT_PATH = "checkpoint_path"  # this report's Train checkpoint, relative to train_runs/
TRIAL_SEED = "trial_seed"  # the trial's own seed (model init, data order, dropout)
EXECUTION_PATH = "execution_path"  # local (in the Tune trial's process) | train_worker_group
WORKERS = "workers"  # Train workers whose reports this row combines
PROCESS_ID = "process_id"  # the trial driver's process (local path: the one that trained)

# Progress and time
TIMESTAMP_S = "timestamp_s"  # unix time of the report
TIMESTAMP_UTC = "timestamp_utc"  # the same moment as a UTC datetime
REPORT_TIME_S = "report_time_s"  # the driver's clock when it reported (becomes timestamp_s)
SEGMENT_LAUNCH_S = "segment_launch_s"  # a segment's start-up before its worker loop (first report)
SEGMENT_SETUP_S = "segment_setup_s"  # the worker's data/model set-up and restore (first report)
STUDY_ELAPSED_S = "study_elapsed_s"  # since the study started
TRIAL_TRAIN_S = "trial_train_s"  # cumulative time workers spent training, this trial's lineage
TRIAL_EVAL_S = "trial_eval_s"  # cumulative time workers spent evaluating
EPOCH = "epoch"  # fractional epochs of training behind this model (lineage, follows PBT clones)
TRIAL_EPOCHS = "trial_epochs"  # epochs this trial itself trained (its budget share)
STEP = "step"
NODE_ID = "node_id"  # the Ray node of the trial's rank-0 Train worker for this report

# Quality
TRAIN_LOSS = "train_loss"
VAL_LOSS = "val_loss"
ROUGE1 = "rouge1"
ROUGE2 = "rouge2"
ROUGEL = "rougeL"
ROUGELSUM = "rougeLsum"
ROUGE_COLUMNS = (ROUGE1, ROUGE2, ROUGEL, ROUGELSUM)

# Throughput and resources
SAMPLES_PER_S = "samples_per_s"
TOKENS_PER_S = "tokens_per_s"  # non-padding source + target tokens
STEP_TIME_S = "step_time_s"
PEAK_RSS_BYTES = "peak_rss_bytes"
PEAK_CUDA_ALLOCATED_BYTES = "peak_cuda_allocated_bytes"
PEAK_CUDA_RESERVED_BYTES = "peak_cuda_reserved_bytes"
CHECKPOINT_BYTES = "checkpoint_bytes"
CHECKPOINT_SAVE_S = "checkpoint_save_s"  # the slowest worker's time to write its checkpoint state
REPORT_LATENCY_S = "report_latency_s"  # last worker's report call -> the Tune driver has it
CPU_UTIL_PCT = "cpu_util_pct"
GPU_UTIL_PCT = "gpu_util_pct"
TRAIN_FLOPS = "train_flops"
TRAIN_FLOPS_SOURCE = "train_flops_source"  # "analytic_estimate" (6 x params x tokens)
TRAINABLE_PARAMS = "trainable_params"
PADDING_FRACTION = "padding_fraction"
TRUNCATED_SOURCE_FRACTION = "truncated_source_fraction"  # share of sources cut at max length
EARLY_STOPPED = "early_stopped"  # the trial's own early stopping ended it at this report

# Energy (this trial's cumulative totals, summed over workers and segments)
ENERGY_GPU_J = "energy_gpu_j"
ENERGY_CPU_J = "energy_cpu_j"
ENERGY_RAM_J = "energy_ram_j"
ENERGY_TOTAL_J = "energy_total_j"
ENERGY_GPU_SOURCE = "energy_gpu_source"
ENERGY_CPU_SOURCE = "energy_cpu_source"
ENERGY_RAM_SOURCE = "energy_ram_source"
# measured share of the device-windows behind each part (1 = every read succeeded; None: none
# attempted, e.g. no GPU); below 1 the part's source is `partial`, a lower bound
ENERGY_GPU_COVERAGE = "energy_gpu_coverage"
ENERGY_CPU_COVERAGE = "energy_cpu_coverage"
ENERGY_RAM_COVERAGE = "energy_ram_coverage"
DEVICE_S = "device_s"  # worker-seconds (GPU-seconds on a GPU cluster)
CO2_KG = "co2_kg"  # each report interval's energy x PUE x the grid intensity of its moment, summed
INTENSITY_G_PER_KWH = "intensity_g_per_kwh"  # the grid intensity applied to this report's interval
COST_USD = "cost_usd"  # attributed: device-hours x per-device share of the VM price

# Held-out table only (test_scores.parquet; beside the ROUGE columns, per example)
EXAMPLE = "example"  # index of the example in the loaded test split
PREDICTION = "prediction"
REFERENCE = "reference"

# Trial table only
STATUS = "status"  # TERMINATED | ERROR | RUNNING | PENDING | PAUSED
STOP_REASON = "stop_reason"  # completed | scheduler_stopped | early_stopping | budget | error
N_REPORTS = "n_reports"
BEST_PREFIX = "best_"  # best_rougeL, ...
FINAL_PREFIX = "final_"  # final_rougeL, ...

# How an energy figure was obtained, strongest first: a sum is as good as its weakest part.
# counter: NVML's cumulative energy / RAPL; power_integral: sampled power, integrated;
# shared_device: a counter of a device other work shares too (a MIG slice reads its whole GPU);
# estimated: a stated model (TDP share, per-GiB RAM); partial: some attempted reads failed, so
# the sum is a lower bound (its `*_coverage` says how much was measured).
# Text columns (every other column of the tables is numeric: missing is NaN, never null or 0)
STRING_COLUMNS = (
    "study",
    "strategy",
    "trial_id",
    "report_id",
    "restored_from_trial",
    "checkpoint_path",
    "execution_path",
    "node_id",
    "train_flops_source",
    "energy_gpu_source",
    "energy_cpu_source",
    "energy_ram_source",
    "status",
    "stop_reason",
    "prediction",
    "reference",
)

ENERGY_SOURCES = ("counter", "power_integral", "shared_device", "estimated", "partial")
