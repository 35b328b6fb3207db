"""Schema-informed EXI (W3C EXI 1.0), sans I/O, with the options ISO 15118 fixes: bit-packed,
`strict` false, no options document. ISO 15118 Plug & Charge carries EXI inside OCPP
(Get15118EVCertificate) and signs EXI fragments.

Errors: :class:`ExiError` for a stream that cannot be read or a tree the schema does not allow.
"""

from chargegrid.protocols.exi.codec import Node, decode, encode, encode_fragment, to_xml
from chargegrid.protocols.exi.errors import ExiError
from chargegrid.protocols.exi.grammar import Grammars, load

__all__ = ["ExiError", "Grammars", "Node", "decode", "encode", "encode_fragment", "load", "to_xml"]
