"""Which connector serves which vendor (libcloud's ``providers.py``): a fifth vendor is one
module and one line here."""

from __future__ import annotations

from gateway.core.records import Vendor
from gateway.vendors.agentex import AgentexConnector
from gateway.vendors.base import Connector
from gateway.vendors.orq import OrqConnector
from gateway.vendors.subnoto import SubnotoConnector
from gateway.vendors.xpander import XpanderConnector

CONNECTORS: dict[Vendor, type[Connector]] = {
    Vendor.AGENTEX: AgentexConnector,
    Vendor.XPANDER: XpanderConnector,
    Vendor.ORQ: OrqConnector,
    Vendor.SUBNOTO: SubnotoConnector,
}


def connector_for(vendor: Vendor) -> type[Connector]:
    return CONNECTORS[vendor]
