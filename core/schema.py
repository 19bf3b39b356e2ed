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
RUNG_DECISIONS_FILE = "rung_decisions.parquet"  # every MO-ASHA rung decision: who, where, why
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
TRAIN_FLOPS_SOURCE = "train_flops_source"  # "analytic_estimate" (per stream: trainables.flops)
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
STOP_REASON = "stop_reason"  # one of STOP_REASONS ("" while a trial runs)
# Why a trial ended: its full epoch budget, the scheduler (ASHA), its own early stopping, the
# study budget, an error.
STOP_COMPLETED = "completed"
STOP_SCHEDULER = "scheduler_stopped"
STOP_EARLY = "early_stopping"
STOP_BUDGET = "budget"
STOP_ERROR = "error"
STOP_REASONS = (STOP_COMPLETED, STOP_SCHEDULER, STOP_EARLY, STOP_BUDGET, STOP_ERROR)
N_REPORTS = "n_reports"
BEST_PREFIX = "best_"  # best_rougeL, ...
FINAL_PREFIX = "final_"  # final_rougeL, ...

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

# How an energy figure was obtained, strongest first: a sum is as good as its weakest part.
# counter: NVML's cumulative energy / RAPL; power_integral: sampled power, integrated;
# shared_device: a counter of a device other work shares too (a MIG slice reads its whole GPU);
# estimated: a stated model (TDP share, per-GiB RAM); partial: some attempted reads failed, so
# the sum is a lower bound (its `*_coverage` says how much was measured).
ENERGY_SOURCES = ("counter", "power_integral", "shared_device", "estimated", "partial")
ESTIMATED_SOURCES = ("estimated",)
MEASURED_SOURCES = tuple(
    s for s in ENERGY_SOURCES if s not in ESTIMATED_SOURCES
)  # partial: a lower bound


# ------------------------------------------------------------------------------------------
# summary.parquet and the report (analysis): one row per strategy. Figures of one study are
# named below; the per-strategy table adds `<figure>_mean`, `_std`, `_min`, `_max`, `_ci_low`,
# `_ci_high`, `_iqm` and `<figure>_vs_grid`.

EARLY_STOP_REASONS = (STOP_SCHEDULER, STOP_EARLY)
NOT_MEASURED = "not measured"

# x axes of the best-so-far curves
X_WALL_S = "wall_s"
X_ENERGY_KWH = "energy_kwh"
X_COST_USD = "cost_usd"
X_CO2_KG = "co2_kg"
X_DEVICE_H = "device_h"
X_CLUSTER_ENERGY_KWH = "cluster_energy_kwh"
X_CLUSTER_CO2_KG = "cluster_co2_kg"
X_CLUSTER_COST_USD = "cluster_cost_usd"
# Figures of one study (the columns of `study_summary`); strategy_summary adds _mean/_std/...
N_SEEDS = "n_seeds"
N_RUNNING = "n_running"
RUNNING = "running"
TRIALS_STARTED = "trials_started"
TRIALS_STOPPED_EARLY = "trials_stopped_early"
TRIALS_FINISHED = "trials_finished"
TRIALS_ERRORED = "trials_errored"
TRIALS_STOPPED_BUDGET = "trials_stopped_budget"
DEVICE_H = "device_h"
ENERGY_KWH = "energy_kwh"
ENERGY_GPU_KWH = "energy_gpu_kwh"
ENERGY_CPU_KWH = "energy_cpu_kwh"
ENERGY_RAM_KWH = "energy_ram_kwh"
ENERGY_MEASURED_KWH = "energy_measured_kwh"
ENERGY_ESTIMATED_KWH = "energy_estimated_kwh"
ENERGY_MEASURED_SHARE = "energy_measured_share"
CO2_LB = "co2_lb"
WALL_S = "wall_s"
BEST_CONFIG = "best_config"
BEST_TRIAL_ID = "best_trial_id"
BEST_SEED = "best_seed"
TARGET_ROUGEL = "target_rougeL"
REACHED_TARGET = "reached_target"
TARGET_REACHED_SEEDS = "target_reached_seeds"
TIME_TO_TARGET_S = "time_to_target_s"
ENERGY_TO_TARGET_KWH = "energy_to_target_kwh"
COST_TO_TARGET_USD = "cost_to_target_usd"
MODEL = "model"
# Whole-cluster energy (metadata.json `cluster_energy`) and its gap to the trials' own meters
CLUSTER_ENERGY_KWH = "cluster_energy_kwh"
CLUSTER_ENERGY_LOW_KWH = "cluster_energy_low_kwh"  # with estimated parts at their band's low end
CLUSTER_ENERGY_HIGH_KWH = "cluster_energy_high_kwh"
ENERGY_LOW_KWH = "energy_low_kwh"  # the trials' own, likewise
ENERGY_HIGH_KWH = "energy_high_kwh"
CLUSTER_ENERGY_GPU_KWH = "cluster_energy_gpu_kwh"
CLUSTER_ENERGY_CPU_KWH = "cluster_energy_cpu_kwh"
CLUSTER_ENERGY_RAM_KWH = "cluster_energy_ram_kwh"
OVERHEAD_ENERGY_KWH = "overhead_energy_kwh"  # cluster - sum of the trials' own meters
OVERHEAD_SHARE = "overhead_share"  # overhead / cluster total
CLUSTER_METERED = "cluster_metered"  # per study: the cluster total was measured
CLUSTER_METERED_SEEDS = "cluster_metered_seeds"  # per strategy: how many seeds have it
CLUSTER_ENERGY_BASIS = (
    "cluster_energy_basis"  # measured | estimated | estimated: CPU, RAM | not measured
)
CLUSTER_NODES = "cluster_nodes"
STARTUP_S = "startup_s"  # trial segments' launch + setup seconds, summed
# The selected model on the held-out test split (metadata.json `test`, `selection`)
TEST_PREFIX = "test_"
TEST_ROUGE = tuple(TEST_PREFIX + r for r in ROUGE_COLUMNS)
TEST_ROUGEL = TEST_PREFIX + ROUGEL
TEST_ROUGEL_LOW = "test_rougeL_ci_low"  # 95 % bootstrap over the test examples, this study
TEST_ROUGEL_HIGH = "test_rougeL_ci_high"
TEST_N = "test_n"
SELECTED_VALIDATION = "selected_validation_score"  # the search metric of the selected report
# The budget as spent (metadata.json `budget`)
BUDGET_UNIT = "budget_unit"
BUDGET_AMOUNT = "budget_amount"
BUDGET_SPENT = "budget_spent"
BUDGET_OVERSHOOT = "budget_overshoot"
# Whole-cluster CO2 and billed dollars, and the whole cluster's spend until the target
CLUSTER_CO2 = "cluster_co2_kg"
CLUSTER_COST = "cluster_cost_usd"
# Carbon accounting (metadata.json `carbon`): scopes kept apart, SCI per functional unit
MARKET_CO2_KG = "market_based_co2_kg"
EMBODIED_KG = "embodied_co2_kg"
SCI_KG = "sci_kg_per_tuned_model"
SCI_PER_1000_SUMMARIES_KG = "sci_kg_per_1000_summaries"
CPU_BASIS = "cpu_estimate_basis"  # per node: how the CPU estimate's watts per thread were set
CLUSTER_ENERGY_TO_TARGET_KWH = "cluster_energy_to_target_kwh"
CLUSTER_CO2_TO_TARGET_KG = "cluster_co2_to_target_kg"
CLUSTER_COST_TO_TARGET_USD = "cluster_cost_to_target_usd"
# The lead-k extractive baseline (metadata.json `baseline`): the floor a model must beat
BASELINE_PREFIX = "baseline_"
BASELINE_LEAD_K = "baseline_lead_k"
BASELINE_SEEDS = "baseline_seeds"
VS_GRID_SUFFIX = "_vs_grid"
STATS = ("mean", "std", "min", "max")
# The efficiency experiments (search_spaces/experiments.yaml, analysis/effects.py): each trial
# is one repeat of one variation; a variation is compared with its `against`, repeat by repeat.
BASELINE_VARIATION = "baseline"
VARIATION = "variation"
REPEAT = "repeat"
AGAINST = "against"
# The effects a plan may expect ("memory": GPU memory where there is a GPU, else the RAM of the
# trial's process; "runtime": the trial's device-seconds; "accuracy": its test ROUGE-L)
EFFECTS = (
    "memory",
    "gpu_memory",
    "speed",
    "throughput",
    "runtime",
    "energy",
    "co2",
    "cost",
    "accuracy",
)
# After the search (`python -m study.run infer`, serving/): the selected model served on each
# runtime over the test split, one row per runtime and run; every request metered on its own.
INFERENCE_FILE = "inference.parquet"
INFERENCE_REQUESTS_FILE = "inference_requests.parquet"
ONNX_DIR = "onnx"  # the exported graphs: fp32/ and int8/, each encoder.onnx and decoder.onnx
TRITON_DIR = "triton_repository"  # a Triton model repository over the fp32 graphs
INFER_RUN = "infer_run"  # which `infer` run a row belongs to (UTC start, ISO 8601)
RUNTIMES = ("pytorch", "onnxruntime", "onnxruntime-int8")
INFERENCE_COLUMNS = (
    "runtime",
    "status",  # ok | failed: <why> | skipped: <why>
    "provider",  # PyTorch's device or ONNX Runtime's execution provider
    "decoder_cache",  # PyTorch's generate() reuses past keys and values; the ONNX decoder not
    "n_summaries",
    "batch_size",
    "threads",
    "model_bytes",  # weights on disk (safetensors; the two ONNX graphs)
    "setup_s",  # once, from best_model/: the export (and for int8 the quantization); 0 for PyTorch
    "setup_energy_j",
    "seconds",  # summarizing only: the metered requests, back to back
    "summaries_per_s",
    "latency_p50_ms",  # per request of batch_size summaries
    "latency_p95_ms",
    "peak_rss_mb",  # the process's resident memory at its peak during the run (sampled)
    "peak_vram_mb",  # torch.cuda.max_memory_allocated (PyTorch on a GPU only)
    "energy_j",
    "energy_source",  # the weakest part's source: counter | power_integral | estimated
    "energy_per_1k_j",
    "energy_per_1k_low_j",  # 95 % Student-t interval over the requests
    "energy_per_1k_high_j",
    "co2_per_1k_g",  # location-based, at the study's region intensity x PUE
    "usd_per_1k",  # the VM's price per GPU x seconds; missing on a local machine
    "rougeL",  # against the reference summaries
    "rougeL_vs_pytorch",  # against PyTorch's summaries: the parity check
    "exact_vs_pytorch",  # share of summaries token for token equal to PyTorch's
)
REQUEST_COLUMNS = (
    "runtime",
    "request",
    "summaries",
    "started_at",
    "latency_s",
    "energy_j",
    "gpu_j",
    "cpu_j",
    "ram_j",
    "energy_source",
    "co2_g",
    "intensity_g_per_kwh",
)
