"""`python -m study.restrict_ssh`, run by cluster.yaml on the head during `ray up`.

The Azure network API is absent here: `restrict` is driven with a stand-in for the one boundary
it uses (azure.mgmt.network's `network_security_groups.list` and `security_rules.get` /
`begin_create_or_update`), holding rules shaped as Ray's template creates them.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import yaml

from study import restrict_ssh
from study.restrict_ssh import check_source, restrict, source_from_ssh_client
from tests.cluster.test_cluster_yaml import CLUSTER_YAML


class FakeNetwork:
    """Two clusters' NSGs in one resource group, each with Ray's `SSH` rule open to `*`."""

    def __init__(self):
        self.rules = {
            ("greentune-rg", name): SimpleNamespace(
                name="SSH", source_address_prefix="*", source_address_prefixes=[]
            )
            for name in ("ray-greentune-1a2b3c-nsg", "ray-other-9f8e7d-nsg")
        }
        self.updates = []
        self.network_security_groups = SimpleNamespace(
            list=lambda rg: [SimpleNamespace(name=n) for g, n in self.rules if g == rg]
        )
        self.security_rules = SimpleNamespace(
            get=lambda rg, nsg, rule: self.rules[(rg, nsg)], begin_create_or_update=self._update
        )

    def _update(self, rg, nsg, name, rule):
        self.updates.append((rg, nsg, name, rule.source_address_prefix))
        self.rules[(rg, nsg)] = rule
        return SimpleNamespace(result=lambda: rule)


def test_the_address_ray_up_connects_from_becomes_the_only_source():
    assert source_from_ssh_client("203.0.113.7 53422 22") == "203.0.113.7/32"
    assert source_from_ssh_client("2001:db8::5 40000 22") == "2001:db8::5/128"
    with pytest.raises(ValueError, match="SSH_CLIENT is not set"):
        source_from_ssh_client(None)
    assert check_source("198.51.100.9/24") == "198.51.100.0/24"
    with pytest.raises(ValueError, match="every address"):
        check_source("0.0.0.0/0")


def test_only_this_cluster_s_rule_is_narrowed_and_a_second_run_changes_nothing():
    network = FakeNetwork()
    assert restrict(network, "greentune-rg", "greentune", "203.0.113.7/32") == [
        "ray-greentune-1a2b3c-nsg"
    ]
    assert network.updates == [
        ("greentune-rg", "ray-greentune-1a2b3c-nsg", "SSH", "203.0.113.7/32")
    ]
    assert network.rules[("greentune-rg", "ray-other-9f8e7d-nsg")].source_address_prefix == "*"
    assert restrict(network, "greentune-rg", "greentune", "203.0.113.7/32") == []
    with pytest.raises(LookupError, match="no security group ray-nope-"):
        restrict(network, "greentune-rg", "nope", "203.0.113.7/32")


def test_a_failure_is_one_line_and_exit_1_so_ray_up_stops(monkeypatch, capsys):
    monkeypatch.delenv("SSH_CLIENT", raising=False)
    assert restrict_ssh.main([]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "SSH_CLIENT is not set" in err[0] and "Restrict SSH" in err[0]


def test_cluster_yaml_runs_it_last_on_the_head():
    commands = yaml.safe_load(CLUSTER_YAML.read_text())["head_setup_commands"]
    assert commands[-1] == "python -m study.restrict_ssh"
