"""Offline checks of cluster.yaml, the Azure cluster that `ray up cluster.yaml` starts.

Nothing here touches Azure or the network. `ray up` and `_bootstrap_config` are never called:
they create resource groups, networks and VMs. What runs instead is the offline part of Ray's
own config handling:

- `prepare_config` merges the file with Ray's Azure defaults. Those are read from the YAML file
  `ray/autoscaler/azure/defaults.yaml`; the Azure SDK (`azure-*`, which this venv does not have)
  is only imported by the node provider, which `prepare_config` never loads.
- `validate_config` checks the result against Ray's `ray-schema.json` (jsonschema, draft 7) plus
  its own rules (head_node_type among the node types, min_workers within max_workers).

What cannot be checked offline (VM sizes and images offered in the region, quota, ARM
deployments, the NSG, SSH, pip installs on the image, driver/CUDA compatibility) is listed in
docs/run_on_azure.md.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import ray
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_YAML = ROOT / "cluster.yaml"
PYPROJECT = ROOT / "pyproject.toml"
DOC = ROOT / "docs" / "run_on_azure.md"
RAY_PKG = Path(ray.__file__).parent
AZURE_DEFAULTS = RAY_PKG / "autoscaler" / "azure" / "defaults.yaml"
AZURE_VM_TEMPLATE = RAY_PKG / "autoscaler" / "_private" / "_azure" / "azure-vm-template.json"

# Azure VM sizes the cluster may use: vCPUs and GPUs per VM (Azure's size pages).
# `resources` in cluster.yaml override what Ray detects on the node, so they must equal these.
VM_SIZES: dict[str, dict[str, int]] = {
    "Standard_D8s_v5": {"CPU": 8, "GPU": 0},  # head: 32 GiB, no GPU
    "Standard_NC4as_T4_v3": {"CPU": 4, "GPU": 1},  # 1 x T4 16 GB
    "Standard_NC24ads_A100_v4": {"CPU": 24, "GPU": 1},  # 1 x A100 80 GB PCIe
    "Standard_NC40ads_H100_v5": {"CPU": 40, "GPU": 1},  # 1 x H100 NVL 94 GB
    "Standard_ND96asr_v4": {"CPU": 96, "GPU": 8},  # 8 x A100 40 GB SXM
    "Standard_ND96isr_H100_v5": {"CPU": 96, "GPU": 8},  # 8 x H100 80 GB SXM
}

# ARM template parameters that Ray's Azure node provider fills in itself; a node_config must
# not set them (Ray would overwrite them, or they would leak a key into the file).
ARM_PARAMS_SET_BY_RAY = {
    "vmName",
    "vmTags",
    "vmCount",
    "msi",
    "nsg",
    "subnet",
    "provisionPublicIp",
    "zones",
    "adminUsername",
    "publicKey",
}

COMMAND_KEYS = (
    "initialization_commands",
    "setup_commands",
    "head_setup_commands",
    "worker_setup_commands",
    "head_start_ray_commands",
    "worker_start_ray_commands",
)

# Strings that look like credentials. Placeholders such as <account> are fine.
SECRET_PATTERNS = {
    "private key block": r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    "ssh public key blob": r"ssh-(rsa|ed25519) AAAA",
    "storage connection string": r"AccountKey\s*=",
    "SAS token": r"(SharedAccessSignature|[?&]sig=[A-Za-z0-9%+/=]{10,})",
    "long hex string (e.g. a Ray auth token)": r"\b[0-9a-fA-F]{32,}\b",
    "long base64 string (e.g. a storage key)": r"[A-Za-z0-9+/]{40,}={0,2}",
    "GUID (subscription, tenant or client id)": (
        r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
    ),
    "password/secret/key assignment": (
        r"(?i)\b(password|passwd|client_secret|secret|api[_-]?key|access[_-]?key|token)\s*[:=]\s*['\"]?[A-Za-z0-9+/=_-]{8,}"
    ),
}


# --------------------------------------------------------------------------------------------
# helpers


def load_cluster() -> dict:
    return yaml.safe_load(CLUSTER_YAML.read_text())


def pyproject_dependencies() -> list[str]:
    text = PYPROJECT.read_text()
    try:
        import tomllib  # Python 3.11+
    except ModuleNotFoundError:  # Python 3.10: the quoted strings of `dependencies = [...]`
        block = re.search(r"^dependencies\s*=\s*\[(.*?)^\]", text, re.S | re.M)
        assert block, "no dependencies list in pyproject.toml"
        return re.findall(r'"([^"]+)"', re.sub(r"#.*", "", block.group(1)))
    return tomllib.loads(text)["project"]["dependencies"]


def pyproject_ray_pin() -> tuple[set[str], str]:
    """(extras, version) of the `ray[...]==X` requirement in pyproject.toml."""
    deps = pyproject_dependencies()
    pins = [
        m for d in deps if (m := re.fullmatch(r"ray\[([^\]]*)\]==([\w.]+)", d.replace(" ", "")))
    ]
    assert len(pins) == 1, f"expected one pinned ray[...]==X in pyproject.toml, found {deps}"
    extras, version = pins[0].groups()
    return {e.strip() for e in extras.split(",")}, version


def all_commands(cfg: dict) -> list[str]:
    """Every shell command in the config, global and per node type."""
    cmds: list[str] = []
    for key in COMMAND_KEYS:
        cmds += cfg.get(key) or []
    for node in cfg["available_node_types"].values():
        for key in ("initialization_commands", "worker_setup_commands"):
            cmds += node.get(key) or []
    return cmds


# `ray`, `ray[...]`, `ray==X`, `ray[...]==X` as a pip requirement (not `~/.ray`, not `x-ray`).
RAY_REQ = re.compile(
    r"""(?<![\w./~-])ray(\[[^\]]*\])?\s*((?:==|>=|<=|~=|!=|>|<)\s*[\w.*]+)?(?=["'\s]|$)"""
)


def ray_requirements(cmd: str) -> list[tuple[str, str]]:
    if not re.search(r"\bpip3?\s+install\b", cmd):
        return []
    return [(m.group(1) or "", (m.group(2) or "").replace(" ", "")) for m in RAY_REQ.finditer(cmd)]


def worker_types(cfg: dict) -> dict[str, dict]:
    return {k: v for k, v in cfg["available_node_types"].items() if k != cfg["head_node_type"]}


def arm(node: dict) -> dict:
    return node["node_config"]["azure_arm_parameters"]


# --------------------------------------------------------------------------------------------
# Ray's own validation


def test_validated_by_the_pinned_ray():
    # A schema from another Ray version would prove nothing about the Ray the cluster runs.
    _, version = pyproject_ray_pin()
    assert ray.__version__ == version


def test_ray_accepts_the_config():
    prepared = prepare_config(load_cluster())
    validate_config(prepared)
    # The shallow merge added nothing that replaces ours: every command list is our own.
    cfg = load_cluster()
    for key in ("initialization_commands", "head_start_ray_commands", "worker_start_ray_commands"):
        assert prepared[key] == cfg[key], key
    assert prepared["head_setup_commands"] == cfg["setup_commands"] + cfg["head_setup_commands"]
    assert prepared["worker_setup_commands"] == cfg["setup_commands"] + cfg["worker_setup_commands"]
    assert prepared["provider"] == cfg["provider"]


def test_every_key_that_ray_defaults_would_fill_is_written_out():
    # The merge with Ray's Azure defaults is shallow: a key left out comes whole from them.
    defaults = yaml.safe_load(AZURE_DEFAULTS.read_text())
    missing = set(defaults) - set(load_cluster())
    assert not missing, f"cluster.yaml leaves these to Ray's Azure defaults: {sorted(missing)}"


def _unknown_top_level_key(cfg):
    cfg["greentune_extra"] = 1


def _float_resource(cfg):
    cfg["available_node_types"]["gpu_a100"]["resources"]["GPU"] = 1.5


def _string_resource(cfg):
    cfg["available_node_types"]["head"]["resources"]["trial_driver"] = "16"


def _negative_resource(cfg):
    cfg["available_node_types"]["gpu_a100"]["resources"]["CPU"] = -1


def _head_type_not_a_node_type(cfg):
    cfg["head_node_type"] = "ray.head.default"


def _missing_provider(cfg):
    del cfg["provider"]


def _unknown_node_type_key(cfg):
    cfg["available_node_types"]["gpu_a100"]["gpus"] = 1


def _min_workers_over_max(cfg):
    cfg["available_node_types"]["gpu_a100"]["min_workers"] = cfg["max_workers"] + 1


@pytest.mark.parametrize(
    "breakage, error",
    [
        (_unknown_top_level_key, jsonschema.ValidationError),
        (_float_resource, jsonschema.ValidationError),
        (_string_resource, jsonschema.ValidationError),
        (_negative_resource, jsonschema.ValidationError),
        (_head_type_not_a_node_type, ValueError),
        (_missing_provider, KeyError),  # prepare_config needs provider.type to pick defaults
        (_unknown_node_type_key, jsonschema.ValidationError),
        (_min_workers_over_max, ValueError),
    ],
    ids=lambda x: getattr(x, "__name__", "").lstrip("_"),
)
def test_broken_variants_are_rejected(breakage, error):
    cfg = load_cluster()
    breakage(cfg)
    with pytest.raises(error):
        validate_config(prepare_config(cfg))


def test_missing_provider_is_a_schema_error_too():
    cfg = load_cluster()
    del cfg["provider"]
    with pytest.raises(jsonschema.ValidationError):
        validate_config(cfg)


# --------------------------------------------------------------------------------------------
# Ray version: the same as pyproject.toml, never a nightly


def test_setup_installs_the_ray_that_pyproject_pins():
    extras, version = pyproject_ray_pin()
    cfg = load_cluster()
    in_setup = [r for c in cfg["setup_commands"] for r in ray_requirements(c)]
    assert in_setup, "setup_commands must pip install ray (else a node has no Ray or a wrong one)"
    everywhere = [r for c in all_commands(cfg) for r in ray_requirements(c)]
    for extra, spec in everywhere:
        assert spec == f"=={version}", (
            f"ray installed as ray{extra}{spec}, pyproject pins =={version}"
        )
        assert {e.strip() for e in extra.strip("[]").split(",")} >= extras, (
            f"ray{extra}: pyproject asks for extras {sorted(extras)}"
        )


def test_no_nightly_or_unpinned_ray_anywhere():
    text = "\n".join(all_commands(prepare_config(load_cluster())))
    for marker in ("ray-wheels", "dev0", "ray-3.0.0", "s3-us-west-2.amazonaws.com"):
        assert marker not in text, f"a nightly Ray wheel ({marker}) would be installed"


def test_the_project_itself_is_installed_on_every_node():
    cfg = load_cluster()
    remote = next((r for r, local in cfg["file_mounts"].items() if local in (".", "./")), None)
    assert remote, "the working copy ('.') must be copied to the nodes (or installed from git)"
    home = remote.replace("~", "$HOME", 1)  # quoted: the extra's brackets are no glob
    assert (
        f'pip install -e "{home}[mlflow,strategies,inference]"' in cfg["setup_commands"]
    )  # --mlflow, bohb...
    # `ray up` runs from the repository root: '.' is this repository.
    assert (ROOT / "pyproject.toml").is_file()
    assert ".venv" in cfg["rsync_exclude"]


def test_head_installs_the_azure_sdk_that_ray_pins():
    # The autoscaler on the head imports the Azure SDK to start worker VMs. Our
    # head_setup_commands replace Ray's; keep Ray's pins (a Ray upgrade shows up here).
    defaults = yaml.safe_load(AZURE_DEFAULTS.read_text())
    wanted = {t for c in defaults["head_setup_commands"] for t in c.split() if "==" in t}
    ours = {t for c in load_cluster()["head_setup_commands"] for t in c.split() if "==" in t}
    assert wanted, "Ray's Azure defaults no longer pin the Azure SDK: re-read defaults.yaml"
    assert wanted <= ours, f"missing from head_setup_commands: {sorted(wanted - ours)}"


# --------------------------------------------------------------------------------------------
# Security


def test_dashboard_is_never_bound_to_all_interfaces():
    assert "0.0.0.0" not in CLUSTER_YAML.read_text()
    for cmd in all_commands(prepare_config(load_cluster())):
        assert "dashboard-host" not in cmd and "dashboard_host" not in cmd, cmd


def test_token_auth_on_every_ray_start():
    cfg = load_cluster()
    starts = [
        c
        for c in cfg["head_start_ray_commands"] + cfg["worker_start_ray_commands"]
        if "ray start" in c
    ]
    assert len(starts) == 2
    for cmd in starts:
        assert re.search(r"\bRAY_AUTH_MODE=token\s+ray start\b", cmd), cmd
    # Drivers started with `ray exec` get the mode from ~/.bashrc.
    assert any("export RAY_AUTH_MODE=token" in c for c in cfg["setup_commands"])


def test_ray_auth_is_never_disabled_anywhere():
    """Not in the cluster, the docs, the code or the tests (they start Ray with a token of their
    own, fixture `ray_token`): a Ray with auth disabled runs anyone's code who reaches a port."""
    disabled = re.compile(r"RAY_AUTH_MODE\W{0,6}disabled")
    folders = ("core", "meter", "study", "trainables", "search_spaces", "analysis")
    folders += ("benchmarks", "tests", "docs")
    files = [CLUSTER_YAML, ROOT / "README.md", ROOT / ".ci" / "run"]
    files += [
        p
        for f in folders
        for p in (ROOT / f).rglob("*")
        if p.suffix in {".py", ".md", ".yaml", ".sh"}
    ]
    assert len(files) > 50
    hits = [
        str(p.relative_to(ROOT)) for p in files if disabled.search(p.read_text(errors="replace"))
    ]
    assert hits == []


def test_token_is_copied_from_a_local_file_outside_the_repository():
    mounts = load_cluster()["file_mounts"]
    assert "~/.ray/auth_token" in mounts, "the token must land where Ray looks by default"
    local = mounts["~/.ray/auth_token"]
    assert local.startswith(("~", "/")), "the token file must not live in the working copy"
    assert not (ROOT / Path(local).name).exists()


def test_network_exposure():
    provider = load_cluster()["provider"]
    # Workers get no public IP; only the head does (for SSH from the user's machine).
    assert provider["use_internal_ips"] is True
    assert provider["use_external_head_ip"] is True
    assert "subscription_id" not in provider


@pytest.mark.parametrize("path", [CLUSTER_YAML, DOC], ids=lambda p: p.name)
def test_no_secret_looking_strings(path):
    text = path.read_text()
    for what, pattern in SECRET_PATTERNS.items():
        hit = re.search(pattern, text)
        assert not hit, f"{path.name}: {what}: {hit.group(0)!r}"


# --------------------------------------------------------------------------------------------
# Node types


def test_head_is_regular_and_is_the_only_driver_host():
    cfg = load_cluster()
    head = cfg["available_node_types"][cfg["head_node_type"]]
    assert arm(head).get("priority", "Regular") == "Regular"
    assert head["resources"]["trial_driver"] >= 1
    assert head["resources"].get("GPU", 0) == 0
    assert head.get("min_workers", 0) == 0 and head.get("max_workers", 0) == 0
    for name, node in worker_types(cfg).items():
        assert node["resources"].get("trial_driver", 0) == 0, name
        assert node["resources"]["GPU"] >= 1, f"{name}: workers exist for their GPUs"


def test_resources_are_integers_equal_to_the_vm_size():
    for name, node in load_cluster()["available_node_types"].items():
        size = arm(node)["vmSize"]
        assert size in VM_SIZES, f"{name}: {size} is not in the test's VM table"
        for key, value in node["resources"].items():
            # type() and not isinstance(): bools are ints, and draft-7 jsonschema accepts 1.0.
            assert type(value) is int and value >= 0, f"{name}.resources.{key}={value!r}"
        for key, count in VM_SIZES[size].items():
            assert node["resources"].get(key, 0) == count, f"{name} ({size}): {key}"


def test_the_brief_s_vm_sizes_are_offered():
    sizes = {arm(n)["vmSize"]: k for k, n in load_cluster()["available_node_types"].items()}
    for size in (
        "Standard_NC24ads_A100_v4",
        "Standard_NC4as_T4_v3",
        "Standard_ND96asr_v4",
        "Standard_ND96isr_H100_v5",
    ):
        assert size in sizes, size


def test_spot_variant_of_the_default_gpu_type():
    cfg = load_cluster()
    spot = {k: n for k, n in worker_types(cfg).items() if arm(n).get("priority") == "Spot"}
    assert spot, "expected a spot worker type"
    for name, node in spot.items():
        assert arm(node)["evictionPolicy"] == "Delete", name
        assert arm(node)["billingProfile"] == {"maxPrice": -1}, name
    assert any(arm(n)["vmSize"] == "Standard_NC24ads_A100_v4" for n in spot.values())


def test_arm_parameters_exist_in_ray_s_vm_template():
    # Ray passes azure_arm_parameters to its ARM template as they are; a parameter the
    # template does not declare fails the deployment, only once VMs are being created.
    declared = set(json.loads(AZURE_VM_TEMPLATE.read_text())["parameters"])
    allowed = (declared - ARM_PARAMS_SET_BY_RAY) | {"availability_zone"}  # popped by Ray
    for name, node in load_cluster()["available_node_types"].items():
        unknown = set(arm(node)) - allowed
        assert not unknown, f"{name}: not parameters of Ray's VM template: {sorted(unknown)}"
        for key in ("imagePublisher", "imageOffer", "imageSku", "imageVersion", "vmSize"):
            assert arm(node).get(key), f"{name}: {key}"


def test_cost_guards():
    cfg = load_cluster()
    workers = worker_types(cfg)
    assert all(n.get("min_workers", 0) == 0 for n in workers.values()), "no GPU VM until needed"
    enabled = [k for k, n in workers.items() if n.get("max_workers", cfg["max_workers"]) > 0]
    assert enabled == ["gpu_a100"], f"one GPU type on by default, got {enabled}"
    for name, node in workers.items():
        if node["resources"]["GPU"] >= 8:
            assert node["max_workers"] == 0, f"{name}: 8-GPU VMs are opt-in"
    assert cfg["idle_timeout_minutes"] <= 10
    assert cfg["provider"]["cache_stopped_nodes"] is False
    assert cfg["provider"]["location"] == "eastus"


# --------------------------------------------------------------------------------------------
# Shared storage and the user guide


def test_storage_uri_resolves_to_pyarrow_s_native_azure_filesystem():
    fs = pytest.importorskip("pyarrow.fs")
    if not hasattr(fs, "AzureFileSystem"):
        pytest.skip("this pyarrow build has no Azure filesystem")
    uris = set(re.findall(r"abfss://[^\s`'\")]+", CLUSTER_YAML.read_text() + DOC.read_text()))
    assert uris, "the abfss:// storage option should be described"
    for uri in uris:
        concrete = re.sub(r"<[^>]+>", "example", uri)  # fill placeholders; nothing is contacted
        filesystem, _ = fs.FileSystem.from_uri(concrete)
        assert type(filesystem).__name__ == "AzureFileSystem", uri


def test_user_guide_agrees_with_the_config():
    doc = DOC.read_text()
    _, version = pyproject_ray_pin()
    for pinned in re.findall(r"ray\[[^\]]*\]==([\w.]+)", doc):
        assert pinned == version, f"docs pin ray=={pinned}, pyproject =={version}"
    assert "0.0.0.0" not in doc
    local_token = load_cluster()["file_mounts"]["~/.ray/auth_token"]
    assert local_token in doc, "the guide must say where to create the token file"
    assert "az network nsg rule update" in doc, "the guide must restrict SSH"
    for cmd in ("ray up cluster.yaml", "ray dashboard cluster.yaml", "ray down cluster.yaml"):
        assert cmd in doc, cmd
