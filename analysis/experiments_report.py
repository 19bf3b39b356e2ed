"""The experiments study's report: the study plan's tables from what the study measured.

`python -m analysis.report EXPERIMENTS_STUDY_DIR [...]` writes it (the same command as for a
strategy comparison; it sees the strategy in metadata.json). Sections: the effects of each
technique against its comparison with the plan's expectations checked, a plot of them, the
variations skipped and why, each variation's own figures, the models compared per dataset
(`Model | Performance | Speed | Resource Usage | Carbon Emission | Cost ($)`), the dataset, the
environment, the models' details and the hyperparameters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from analysis import plots
from analysis.document import Section
from analysis.effects import absolute_table, effects_table, plan_of, trial_measures
from analysis.formatting import num, sig, usd
from analysis.load import Study
from core import schema
from core.reference import dataset_sizes, pretraining
from core.stats import t_interval

EFFECTS_NOTE = (
    "Each variation turns one knob of the baseline (or, for sparse attention, swaps the dense "
    "model for its sparse counterpart) and runs the same seeds; a change is the mean over "
    "seeds of the paired change against the comparison, with its 95 % Student-t interval "
    "(relative, in %; test ROUGE-L in absolute points). The plan's expectation is met (yes) "
    "when the interval lies on the expected side of zero. RAM is the peak resident memory of "
    "the trial's own process (a fresh process per trial: Python, torch and the data included, "
    "so a model's own memory shows as a small share of it); GPU memory is torch's peak "
    "allocation; runtime is the trial's device-seconds; energy, CO2e and cost are the trial's "
    "own meters (the study's overhead is in the closing totals, not here)."
)
MODELS_NOTE = (
    "The models this study fine-tuned on {dataset}, each with the baseline's settings and the "
    "same seeds: performance is the test ROUGE-L of the final model (mean ± 95 % t-interval "
    "over seeds), speed the training samples/s, resource usage the peak memory and the "
    "device-hours, carbon the trials' own CO2e, cost their attributed dollars."
)


def _mean_ci(values: Sequence[float], fmt: Any) -> str:
    mean, low, high, n = t_interval(values)
    if n == 0:
        return "–"
    if n == 1 or not math.isfinite(low):
        return f"{fmt(mean)} (1 seed)"
    return f"{fmt(mean)} ± {fmt((high - low) / 2)}"


def _gib(v: float) -> str:
    return "–" if not math.isfinite(v) else f"{v / 2**30:.2f} GiB"


def model_table(
    measures: pd.DataFrame, plan: dict[str, Any], has_gpu: bool, study_model: str
) -> pd.DataFrame:
    """One row per model: the baseline and every variation that only swaps the model."""
    rows = []
    for v in plan.get("variations") or []:
        settings = v.get("settings") or {}
        if set(settings) - {"model.name"}:
            continue  # a knob turned, not a model swapped
        group = measures[measures[schema.VARIATION] == v["name"]]
        if group.empty:
            continue
        memory = "peak_gpu_bytes" if has_gpu else "peak_ram_bytes"
        rows.append(
            {
                "Model": settings.get("model.name") or study_model,
                "Performance (test ROUGE-L)": _mean_ci(
                    group[schema.TEST_ROUGEL].tolist(), lambda x: num(x, 4)
                ),
                "Speed (samples/s)": _mean_ci(group[schema.SAMPLES_PER_S].tolist(), sig),
                "Resource usage": (
                    f"{'GPU' if has_gpu else 'RAM'} {_gib(group[memory].mean())}, "
                    f"{sig(group[schema.DEVICE_S].mean() / 3600)} device-h"
                ),
                "Carbon emission (g CO2e)": _mean_ci((group[schema.CO2_KG] * 1000).tolist(), sig),
                "Cost ($)": usd(group[schema.COST_USD].mean()),
            }
        )
    return pd.DataFrame(rows)


def dataset_table(details: dict[str, Any], test: dict[str, Any] | None) -> pd.DataFrame:
    """Samples and mean lengths per split (the test split as read at the study's end)."""
    full = dataset_sizes(str(details.get("dataset", ""))) or {}
    splits = dict(details.get("splits") or {})
    if (test or {}).get("split_details"):
        splits["test"] = test["split_details"]
    rows = []
    for role, d in splits.items():
        rows.append(
            {
                "split": f"{role} ({d.get('split')})",
                "samples loaded": f"{d['samples']:,}",
                "full dataset": f"{full[role]:,}" if full.get(role) else "–",
                "source words": num(d["source_words"], 1),
                "target words": num(d["target_words"], 1),
                "source BPE tokens": num(d["source_tokens"], 1),
                "target BPE tokens": num(d["target_tokens"], 1),
                "sources over max_source_tokens": f"{100 * d['source_truncated_fraction']:.0f} %",
            }
        )
    return pd.DataFrame(rows)


def environment_table(study: Study) -> pd.DataFrame:
    hw, versions = study.metadata.section("hardware"), study.metadata.section("versions")
    gpus = hw.get("gpus") or []
    rows = [
        ("OS", hw.get("platform", "–")),
        ("CPU", f"{hw.get('processor', '–')} ({hw.get('logical_cpus', '–')} logical CPUs)"),
        ("GPU", ", ".join(gpus) if gpus else "none"),
        ("memory", _gib(float(hw.get("memory_bytes") or math.nan))),
        ("Python", hw.get("python", "–")),
        *((name, str(version)) for name, version in sorted(versions.items()) if version),
    ]
    return pd.DataFrame(rows, columns=["", "value"])


def model_details_table(models: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for m in models:
        known = pretraining(str(m.get("model", "")))
        rows.append(
            {
                "model": m.get("model"),
                "family": m.get("family"),
                "parameters": f"{m.get('parameters', 0):,}",
                "encoder / decoder": (
                    f"{m.get('encoder_parameters', 0):,} / {m.get('decoder_parameters', 0):,}"
                ),
                "pre-training": known[0] if known else "not in greentune's table",
                "source": known[1] if known else "–",
            }
        )
    return pd.DataFrame(rows)


def hyperparameter_table(study: Study, plan: dict[str, Any]) -> pd.DataFrame:
    cfg = study.config
    rows = [(f"train.{k}", v) for k, v in (cfg.get("train") or {}).items()]
    rows += [
        (f"data.{k}", (cfg.get("data") or {}).get(k))
        for k in ("dataset", "n_train", "n_validation", "n_test", "max_source_tokens")
    ]
    rows += [(f"eval.{k}", v) for k, v in (cfg.get("eval") or {}).items()]
    rows += [
        (f"variation {v['name']}", ", ".join(f"{k}={x}" for k, x in v["settings"].items()))
        for v in plan.get("variations") or []
        if v.get("settings")
    ]
    return pd.DataFrame([(k, str(v)) for k, v in rows], columns=["setting", "value"])


def experiments_sections(studies: Sequence[Study]) -> list[Section]:
    out: list[Section] = []
    for study in studies:
        plan = plan_of(study.metadata)
        has_gpu = bool(study.metadata.section("hardware").get("gpus"))
        measures = trial_measures(study.reports, study.trials)
        table, changes = effects_table(measures, plan, has_gpu)
        where = f"{study.dataset}, {study.name}"
        if study.running:
            out.append(Section(banner=True, note=f"{study.name} is still running: partial."))
        out.append(Section(f"Effects of each technique ({where})", EFFECTS_NOTE, table))
        png = plots.figure_png(plots.plot_effects(changes, has_gpu))
        out.append(
            Section("Effects plot", "Dot: mean; bar: 95 % interval.", plot=png, is_plot=True)
        )
        skipped = plan.get("skipped") or {}
        if skipped:
            out.append(
                Section(
                    "Not run here",
                    "Variations this cluster cannot measure, with the reason (not faked).",
                    pd.DataFrame({"variation": list(skipped), "why": list(skipped.values())}),
                )
            )
        absolute = absolute_table(measures)
        out.append(
            Section(
                "Each variation's own figures (mean over seeds)",
                "What the changes above are relative to.",
                absolute.map(lambda v: sig(v) if isinstance(v, float) else v),
                "bench",
            )
        )
        out.append(
            Section(
                f"Models on {study.dataset}",
                MODELS_NOTE.format(dataset=study.dataset),
                model_table(measures, plan, has_gpu, str(study.model)),
            )
        )
        details = study.metadata.data_details or {}
        out.append(
            Section(
                "Dataset details",
                "Counted on the examples the study loaded (words: whitespace tokens; BPE "
                f"tokens: the {details.get('tokenizer')} tokenizer, untruncated); the full "
                "dataset's sizes from its card or paper.",
                dataset_table(details, study.metadata.test),
            )
        )
        out.append(Section("Environment", "From metadata.json.", environment_table(study)))
        out.append(
            Section(
                "Model details",
                "Parameters counted on the model's class (shared embeddings in both stacks); "
                "pre-training from the papers (core/data/pretraining.csv).",
                model_details_table(study.metadata.models),
            )
        )
        out.append(
            Section(
                "Hyperparameters",
                "The baseline every variation starts from, and each variation's knob.",
                hyperparameter_table(study, plan),
            )
        )
    return out
