"""best_model/README.md: Hugging Face's model card with the fine-tune's own CO2 in its front
matter and the whole search's in its text (from a study's metadata.json)."""

import yaml

from core.metadata import StudyMetadata
from study.model_card import model_card

METADATA = {
    "study": "pbt-bart-samsum-seed0",
    "strategy": "pbt",
    "config": {
        "model": {"name": "facebook/bart-base"},
        "data": {"dataset": "samsum"},
        "energy": {"region": "eastus", "vm_size": "Standard_NC24ads_A100_v4"},
    },
    "hardware": {"processor": "AMD EPYC 7V13", "gpus": ["NVIDIA A100 80GB PCIe"]},
    "footprint": {"intensity_source": "Ember 2024, US (dated table)"},
    "selection": {
        "trial_id": "a_00003",
        "iteration": 6,
        "metric": "rougeL",
        "validation_score": 0.412,
        "config": {"lr": 3e-5},
        "trial_co2_kg": 0.0123,
        "trial_energy_j": 90_000.0,
        "trial_energy_sources": {"gpu": "counter", "cpu": "estimated", "ram": "estimated"},
    },
    "test": {
        "evaluated": True,
        "rougeL": 0.401,
        "rougeL_ci95": [0.39, 0.41],
        "rouge1": 0.47,
        "rouge2": 0.21,
        "n": 819,
        "split": "test",
    },  # fmt: skip
    "carbon": {"operational_kg": 0.25, "embodied_kg": 0.02},
    "budget": {"unit": "trial_epochs", "amount": 16, "spent": 16.5},
}


def front(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_front_matter_is_hugging_face_s_with_the_fine_tune_s_own_co2():
    card = front(model_card(StudyMetadata.from_dict(METADATA)))
    assert card["co2_eq_emissions"] == {
        "emissions": 12.3,  # grams: 0.0123 kg
        "source": "greentune: the selected trial's energy (gpu counter, cpu estimated, ram "
        "estimated) x PUE x grid intensity (Ember 2024, US (dated table))",
        "training_type": "fine-tuning",
        "geographical_location": "eastus",
        "hardware_used": "Standard_NC24ads_A100_v4: 1 x NVIDIA A100 80GB PCIe",
    }
    assert card["base_model"] == "facebook/bart-base" and card["datasets"] == ["Samsung/samsum"]
    assert card["pipeline_tag"] == "summarization" and "pbt" in card["tags"]


def test_the_text_gives_the_test_score_and_what_the_whole_search_cost():
    text = model_card(StudyMetadata.from_dict(METADATA))
    assert "ROUGE-L 0.4010 (95 % bootstrap interval 0.3900 to 0.4100)" in text
    assert "on 819 examples of the 'test' split" in text
    assert "12.3 g CO2eq, 25 Wh" in text  # 90 kJ
    assert "The whole search that found it (pbt, budget 16 trial_epochs, spent 16.5): 250 g" in text
    assert "plus 20 g embodied" in text


def test_a_preset_on_built_in_data_has_no_hub_ids_and_unmeasured_co2_is_said():
    meta = {
        **METADATA,
        "config": {"model": {"name": "tiny-bart"}, "data": {"dataset": "builtin"}, "energy": {}},
        "hardware": {"processor": "AMD EPYC"},
        "selection": {**METADATA["selection"], "trial_co2_kg": None},
    }
    text = model_card(StudyMetadata.from_dict(meta))
    card = front(text)
    assert "base_model" not in card and "datasets" not in card
    assert "co2_eq_emissions" not in card and "own fine-tuning: not measured" in text
