"""Which connector serves which vendor (libcloud's ``providers.py``): a fifth vendor is one
module and one line in each table here."""

from __future__ import annotations

from collections.abc import Callable

from gateway.core.records import Vendor
from gateway.vendors import agentex, orq, subnoto, xpander
from gateway.vendors.base import Connector, Credentials

CONNECTORS: dict[Vendor, type[Connector]] = {
    Vendor.AGENTEX: agentex.AgentexConnector,
    Vendor.XPANDER: xpander.XpanderConnector,
    Vendor.ORQ: orq.OrqConnector,
    Vendor.SUBNOTO: subnoto.SubnotoConnector,
}

CREDENTIALS: dict[Vendor, Callable[[str], Credentials]] = {
    Vendor.AGENTEX: agentex.default_credentials,
    Vendor.XPANDER: xpander.default_credentials,
    Vendor.ORQ: orq.default_credentials,
    Vendor.SUBNOTO: subnoto.default_credentials,
}


def connector_for(vendor: Vendor) -> type[Connector]:
    return CONNECTORS[vendor]


def default_credentials(vendor: Vendor, secret: str) -> Credentials:
    """``secret`` in the header and scheme ``vendor`` expects (configured keys and the keys
    callers forward alike)."""
    return CREDENTIALS[vendor](secret)
