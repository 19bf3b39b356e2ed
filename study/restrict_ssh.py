"""Close the cluster's SSH port to the address `ray up` connects from, as part of `ray up`.

Ray 2.60's Azure template creates the cluster's network security group with an inbound rule
`SSH` (TCP 22) from any address and re-deploys it on every `ray up`. cluster.yaml runs this
module last in `head_setup_commands`, on the head, over the SSH session `ray up` opened: the
session's `SSH_CLIENT` names the address the user connects from (as the head sees it, after any
NAT), and the rule is narrowed to it (/32, or /128 for IPv6) through the head's managed identity,
which Ray gives Contributor on the cluster's resource group. The head reaches the workers over
the VNet, which Azure's default rules allow, so nothing else changes.

    python -m study.restrict_ssh                              # on the head (cluster.yaml)
    python -m study.restrict_ssh --source 198.51.100.0/24     # a range of your own

The cluster is the head VM's own (its `ray-cluster-name` tag, set by Ray).

A failure exits 1 with one line (so `ray up` stops before Ray starts on a head whose SSH is open
to everyone) naming the manual command in docs/run_on_azure.md.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
import urllib.request
from typing import Any

CLUSTER_TAG = "ray-cluster-name"  # ray.autoscaler.tags.TAG_RAY_CLUSTER_NAME, on every Ray VM
SSH_RULE = "SSH"  # the rule's name in Ray's azure-config-template.json
IMDS = "http://169.254.169.254/metadata/instance/compute?api-version=2021-02-01"


def source_from_ssh_client(ssh_client: str | None) -> str:
    """`SSH_CLIENT` ("<address> <port> <port>") as a one-address range."""
    if not ssh_client or not ssh_client.split():
        raise ValueError(
            "SSH_CLIENT is not set (not run over SSH); pass --source <your range>, e.g. "
            "--source 198.51.100.7/32"
        )
    address = ipaddress.ip_address(ssh_client.split()[0])
    return f"{address}/{address.max_prefixlen}"


def check_source(source: str) -> str:
    network = ipaddress.ip_network(source, strict=False)
    if network.prefixlen == 0:
        raise ValueError(f"--source {source!r} is every address; give your own range")
    return str(network)


def cluster_nsgs(network: Any, resource_group: str, cluster: str) -> list[str]:
    """The cluster's security groups (`ray-<cluster>-<unique id>-nsg`)."""
    return sorted(
        g.name
        for g in network.network_security_groups.list(resource_group)
        if g.name.startswith(f"ray-{cluster}-") and g.name.endswith("-nsg")
    )


def restrict(network: Any, resource_group: str, cluster: str, source: str) -> list[str]:
    """Narrow every cluster NSG's SSH rule to `source`; returns the NSGs changed."""
    changed = []
    nsgs = cluster_nsgs(network, resource_group, cluster)
    if not nsgs:
        raise LookupError(f"no security group ray-{cluster}-*-nsg in {resource_group}")
    for nsg in nsgs:
        rule = network.security_rules.get(resource_group, nsg, SSH_RULE)
        if rule.source_address_prefix == source and not rule.source_address_prefixes:
            continue
        rule.source_address_prefix, rule.source_address_prefixes = source, []
        network.security_rules.begin_create_or_update(resource_group, nsg, SSH_RULE, rule).result()
        changed.append(nsg)
    return changed


def head_identity() -> tuple[str, str, str]:
    """(subscription id, resource group, Ray cluster name) of this VM, from the instance
    metadata service."""
    request = urllib.request.Request(IMDS, headers={"Metadata": "true"})
    with urllib.request.urlopen(request, timeout=5) as r:
        compute = json.load(r)
    tags = {t["name"]: t["value"] for t in compute.get("tagsList") or []}
    return compute["subscriptionId"], compute["resourceGroupName"], tags[CLUSTER_TAG]


def network_client(subscription_id: str) -> Any:
    from azure.identity import ManagedIdentityCredential
    from azure.mgmt.network import NetworkManagementClient

    return NetworkManagementClient(ManagedIdentityCredential(), subscription_id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m study.restrict_ssh", description=__doc__)
    parser.add_argument("--source", help="address range allowed in (default: SSH_CLIENT's /32)")
    args = parser.parse_args(argv)
    try:
        source = check_source(args.source or source_from_ssh_client(os.environ.get("SSH_CLIENT")))
        subscription_id, resource_group, cluster = head_identity()
        changed = restrict(network_client(subscription_id), resource_group, cluster, source)
    except Exception as e:  # one line for `ray up`'s log, whatever failed
        print(
            f"error: could not restrict SSH to the cluster ({type(e).__name__}: {str(e)[:200]}); "
            "restrict the NSG rule by hand (docs/run_on_azure.md, 'Restrict SSH')",
            file=sys.stderr,
        )
        return 1
    print(f"SSH to cluster {cluster} allowed from {source} only ({len(changed)} rule(s) changed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
