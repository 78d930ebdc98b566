"""Last.fm's XML bodies: what the API answers when no ``format=json`` is asked.

pylast (the daemon's web auth) reads this format. The simulator speaks it for ``auth.*``::

    <?xml version="1.0" encoding="UTF-8"?>
    <lfm status="ok"><token>cf45fe5a3e3cebe168480a086d7fe481</token></lfm>
    <lfm status="ok"><session><name>simuser</name><key>…</key><subscriber>0</subscriber></session></lfm>
    <lfm status="failed"><error code="14">Unauthorized Token - …</error></lfm>

Text is escaped by ElementTree, so a value never becomes markup.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping

CONTENT_TYPE = "text/xml"
_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'

Value = str | int | Mapping[str, "Value"]


def _fill(parent: ET.Element, data: Mapping[str, Value]) -> None:
    for name, value in data.items():
        child = ET.SubElement(parent, name)
        if isinstance(value, Mapping):
            _fill(child, value)
        else:
            child.text = str(value)


def _document(root: ET.Element) -> bytes:
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return _DECLARATION + body + b"\n"


def ok(data: Mapping[str, Value]) -> bytes:
    """``<lfm status="ok">`` around ``data`` (nested mappings become nested elements)."""
    root = ET.Element("lfm", status="ok")
    _fill(root, data)
    return _document(root)


def failed(code: int, message: str) -> bytes:
    """An error as Last.fm sends it in XML."""
    root = ET.Element("lfm", status="failed")
    ET.SubElement(root, "error", code=str(code)).text = message
    return _document(root)
