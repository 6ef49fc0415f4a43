"""The OData entity model: one entity set, ``Tasks``, whose properties are the BI columns
(``gateway.core.columns.COLUMNS``, the exports' columns) named in camelCase as the GraphQL
API names them (``agent_id`` is ``agentId``), typed from the index's own column types so the
CSDL can never disagree with what the rows hold.

``metadata_xml`` writes the CSDL document (``/odata/$metadata``) that Power BI, Excel and
Tableau read before anything else: it is built with an XML library, never by pasting text.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import sqlalchemy as sa

from gateway.core.columns import COLUMNS

NAMESPACE = "TaskGateway"
ENTITY_TYPE = "Task"
ENTITY_SET = "Tasks"
CONTAINER = "Container"
KEY = "id"
EDMX = "http://docs.oasis-open.org/odata/ns/edmx"
EDM = "http://docs.oasis-open.org/odata/ns/edm"

STRING = "Edm.String"
DATE_TIME_OFFSET = "Edm.DateTimeOffset"
DOUBLE = "Edm.Double"
INT64 = "Edm.Int64"
ET.register_namespace("edmx", EDMX)
ET.register_namespace("", EDM)
EDM_TYPES: dict[type, str] = {
    str: STRING,
    dt.datetime: DATE_TIME_OFFSET,
    float: DOUBLE,
    int: INT64,
}


@dataclass(frozen=True)
class Property:
    """One property of ``Task``: its OData name, the SQL column behind it, its Edm type."""

    name: str
    column: sa.ColumnElement[object]
    edm: str
    nullable: bool


def camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.capitalize() for part in rest)


def edm_type(column: sa.ColumnElement[object]) -> str:
    """The Edm type of a column, from the Python type its SQL type holds (a decorated type
    by its implementation's); anything unknown is shown as text."""
    sql_type = column.type
    if isinstance(sql_type, sa.TypeDecorator):
        sql_type = sql_type.impl_instance
    try:
        python_type = sql_type.python_type
    except NotImplementedError:
        return STRING
    return next((edm for kind, edm in EDM_TYPES.items() if issubclass(python_type, kind)), STRING)


def model_properties(source: sa.FromClause) -> dict[str, Property]:
    """The properties of ``Task`` over ``source`` (the index's table or view), by OData name,
    in the columns' order. ``id`` is the key and never null."""
    properties: dict[str, Property] = {}
    for name in COLUMNS:
        column = source.c[name]
        nullable = name != KEY and bool(getattr(column, "nullable", True))
        properties[camel(name)] = Property(camel(name), column, edm_type(column), nullable)
    return properties


def metadata_xml(properties: dict[str, Property]) -> bytes:
    """The CSDL (OData 4.0, XML) of the one entity type and its entity set."""
    root = ET.Element(f"{{{EDMX}}}Edmx", Version="4.0")
    services = ET.SubElement(root, f"{{{EDMX}}}DataServices")
    schema = ET.SubElement(services, f"{{{EDM}}}Schema", Namespace=NAMESPACE)
    entity = ET.SubElement(schema, f"{{{EDM}}}EntityType", Name=ENTITY_TYPE)
    key = ET.SubElement(entity, f"{{{EDM}}}Key")
    ET.SubElement(key, f"{{{EDM}}}PropertyRef", Name=KEY)
    for prop in properties.values():
        attributes = {"Name": prop.name, "Type": prop.edm}
        if not prop.nullable:
            attributes["Nullable"] = "false"
        ET.SubElement(entity, f"{{{EDM}}}Property", attributes)
    container = ET.SubElement(schema, f"{{{EDM}}}EntityContainer", Name=CONTAINER)
    ET.SubElement(
        container,
        f"{{{EDM}}}EntitySet",
        Name=ENTITY_SET,
        EntityType=f"{NAMESPACE}.{ENTITY_TYPE}",
    )
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document
