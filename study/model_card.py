"""The model card of a study's selected model (`best_model/README.md`), from its metadata.json.

Hugging Face reads the card's YAML front matter; its `co2_eq_emissions` block (emissions in
grams, source, training_type, geographical_location, hardware_used) is filled with the selected
trial's own fine-tuning, as the Hub defines it. The card states separately, in its text, what the
whole search that found the model cost: the tuned model's carbon counts the tuning behind it.

    >>> text = model_card(read_metadata("greentune_results/s"))
"""

from __future__ import annotations

import math
from typing import Any

import yaml

from core import schema
from core.metadata import StudyMetadata

HUB_DATASETS = {  # greentune's dataset names -> their Hugging Face ids (as data.dataset knows them)
    "cnn_dailymail": "abisee/cnn_dailymail",
    "xsum": "EdinburghNLP/xsum",
    "samsum": "Samsung/samsum",
    "reddit_tifu": "ctr4si/reddit_tifu",
}


def _grams(kg: Any) -> float | None:
    """kg as grams, to 6 significant figures (a CPU test study emits thousandths of a gram)."""
    if not isinstance(kg, int | float) or not math.isfinite(kg):
        return None
    return float(f"{float(kg) * 1000.0:.6g}")


def hardware_used(metadata: StudyMetadata) -> str:
    cfg = metadata.config or {}
    vm = (cfg.get("energy") or {}).get("vm_size")
    hw = metadata.hardware or {}
    gpus = hw.get("gpus") or []  # device names (study.provenance.hardware)
    names = sorted(set(gpus))
    device = (
        f"{len(gpus)} x {', '.join(names)}" if gpus else f"CPU ({hw.get('processor') or 'unknown'})"
    )
    return f"{vm}: {device}" if vm else device


def front_matter(metadata: StudyMetadata) -> dict[str, Any]:
    cfg = metadata.config or {}
    selection = metadata.selection or {}
    energy = cfg.get("energy") or {}
    sources = selection.get("trial_energy_sources") or {}
    footprint = metadata.footprint or {}
    measured = ", ".join(f"{part} {src}" for part, src in sources.items() if src) or "unknown"
    source = (
        f"greentune: the selected trial's energy ({measured}) x PUE x grid intensity "
        f"({footprint.get('intensity_source') or 'see metadata.json footprint'})"
    )
    card: dict[str, Any] = {
        "library_name": "transformers",
        "pipeline_tag": "summarization",
        "tags": ["summarization", "greentune", metadata.strategy or ""],
        "metrics": ["rouge"],
    }
    dataset = (cfg.get("data") or {}).get("dataset", "")
    if dataset in HUB_DATASETS:
        card["datasets"] = [HUB_DATASETS[dataset]]
    model = selection.get("model_name") or (cfg.get("model") or {}).get("name", "")
    if "/" in model:  # a hub name (not a preset or a local folder)
        card["base_model"] = model
    grams = _grams(selection.get("trial_co2_kg"))
    if grams is not None:
        card["co2_eq_emissions"] = {
            "emissions": grams,
            "source": source,
            "training_type": "fine-tuning",
            "geographical_location": energy.get("region") or "local machine (region not set)",
            "hardware_used": hardware_used(metadata),
        }
    return card


def model_card(metadata: StudyMetadata) -> str:
    """The card's text: front matter, what the model is, how it scored, what it cost."""
    cfg = metadata.config or {}
    selection = metadata.selection or {}
    test = metadata.test or {}
    carbon = metadata.carbon or {}
    budget = metadata.budget or {}
    model = selection.get("model_name") or (cfg.get("model") or {}).get("name", "?")
    dataset = (cfg.get("data") or {}).get("dataset", "?")
    lines = [
        "---",
        yaml.safe_dump(front_matter(metadata), sort_keys=False).strip(),
        "---",
        "",
        f"# {metadata.study or 'greentune study'}: {model} fine-tuned on {dataset}",
        "",
        f"Selected by a {metadata.strategy} search (greentune): the best validation "
        f"{selection.get('metric')} of any report, "
        f"{selection.get('validation_score', math.nan):.4f} "
        f"(trial {selection.get('trial_id')}, report {selection.get('iteration')}), with "
        f"hyperparameters {selection.get('config')}.",
        "",
    ]
    if test.get("evaluated"):
        low, high = test.get("rougeL_ci95") or (math.nan, math.nan)
        lines += [
            f"Held-out test: ROUGE-L {test['rougeL']:.4f} (95 % bootstrap interval {low:.4f} to "
            f"{high:.4f}), ROUGE-1 {test.get('rouge1', math.nan):.4f}, ROUGE-2 "
            f"{test.get('rouge2', math.nan):.4f} on {test['n']} examples of the "
            f"{test['split']!r} split, which no search decision saw.",
            "",
        ]
    trial_g = _grams(selection.get("trial_co2_kg"))
    search_g = _grams(carbon.get("operational_kg"))
    embodied_g = _grams(carbon.get("embodied_kg"))
    energy_j = selection.get("trial_energy_j")
    lines += ["## Carbon", ""]
    lines.append(
        f"- This model's own fine-tuning (the selected trial up to the selected report; a PBT "
        f"clone counts from its exploit): {trial_g:.4g} g CO2eq"
        + (f", {energy_j / 3600:.4g} Wh" if isinstance(energy_j, int | float) else "")
        + " (the `co2_eq_emissions` above)."
        if trial_g is not None
        else "- This model's own fine-tuning: not measured."
    )
    if search_g is not None:
        lines.append(
            f"- The whole search that found it ({metadata.strategy}, budget "
            f"{budget.get('amount')} {budget.get('unit')}, spent {budget.get('spent')}): "
            f"{search_g:.4g} g CO2eq operational (the whole cluster, idle and overhead included, "
            "PUE applied)"
            + (
                f", plus {embodied_g:.4g} g embodied (the VMs' manufacturing share)"
                if embodied_g
                else ""
            )
            + "."
        )
    lines += [
        "- Estimated parts (CPU and RAM without a counter) carry +-50 %; the study's "
        f"`{schema.METADATA_FILE}` says how each figure was obtained.",
        "",
        "## Use",
        "",
        "```python",
        "from transformers import AutoModelForSeq2SeqLM, AutoTokenizer",
        "model = AutoModelForSeq2SeqLM.from_pretrained('best_model')",
        "tokenizer = AutoTokenizer.from_pretrained('best_model')",
        "ids = tokenizer(['...a dialogue or an article...'], return_tensors='pt', truncation=True)",
        "print(tokenizer.batch_decode(model.generate(**ids), skip_special_tokens=True))",
        "```",
        "",
        "Its generation config holds the study's decoding (beams, length), so `generate()` "
        "summarizes as the evaluation did.",
        "",
    ]
    return "\n".join(lines)
