"""Which connector serves which vendor (libcloud's ``providers.py``): the one list of vendors.

A fifth vendor's connector is one module and one line here (``docs/adding-a-vendor.md``
lists its other files). Everything else that needs to know about a
vendor (configuration, the CLI, forwarded keys, the GraphQL descriptions) reads the
connector class's declarations through this module.
"""

from __future__ import annotations

from gateway.core.contract import Credentials
from gateway.core.records import Vendor
from gateway.vendors import agentex, orq, subnoto, xpander
from gateway.vendors.base import Connector

CONNECTORS: dict[Vendor, type[Connector]] = {
    Vendor.AGENTEX: agentex.AgentexConnector,
    Vendor.XPANDER: xpander.XpanderConnector,
    Vendor.ORQ: orq.OrqConnector,
    Vendor.SUBNOTO: subnoto.SubnotoConnector,
}


def connector_for(vendor: Vendor) -> type[Connector]:
    return CONNECTORS[vendor]


def default_credentials(vendor: Vendor, secret: str) -> Credentials:
    """``secret`` in the header and scheme ``vendor`` expects (configured keys and the keys
    callers forward alike)."""
    return CONNECTORS[vendor].credentials(secret)
