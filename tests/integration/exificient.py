"""EXIficient, the Java EXI implementation the V2G world's codecs were generated from, as an
oracle for chargegrid's own codec. It runs in a JVM through py4j, from the jar the ``iso15118``
wheel on PyPI carries (``.ci/run`` fetches it; ``scripts/fetch_exificient.sh`` does the same for
a developer). Tests skip with the reason when Java or the jar is missing.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

JAR = Path(
    os.environ.get(
        "CHARGEGRID_EXIFICIENT_JAR", Path(__file__).parents[2] / ".cache" / "EXICodec.jar"
    )
)


class Exificient:
    """Encode XML to EXI and decode EXI to XML with grammars built by EXIficient from an XSD,
    with the options ISO 15118 uses (defaults, no string-table hits)."""

    def __init__(self, gateway: Any, xsd: Path) -> None:
        self.jvm = gateway.jvm
        factory = self.jvm.com.siemens.ct.exi.grammars.GrammarFactory.newInstance()
        self.grammars = factory.createGrammars(str(xsd))

    def _factory(self, fragment: bool) -> Any:
        factory = self.jvm.com.siemens.ct.exi.core.helpers.DefaultEXIFactory.newInstance()
        factory.setGrammars(self.grammars)
        factory.setFragment(fragment)
        factory.setValuePartitionCapacity(0)
        return factory

    def encode(self, xml: str, fragment: bool = False) -> bytes:
        jvm = self.jvm
        out = jvm.java.io.ByteArrayOutputStream()
        result = jvm.com.siemens.ct.exi.main.api.sax.EXIResult(self._factory(fragment))
        result.setOutputStream(out)
        reader = jvm.org.xml.sax.helpers.XMLReaderFactory.createXMLReader()
        reader.setFeature("http://xml.org/sax/features/namespaces", True)
        reader.setContentHandler(result.getHandler())
        reader.parse(jvm.org.xml.sax.InputSource(jvm.java.io.StringReader(xml)))
        return bytes(out.toByteArray())

    def decode(self, data: bytes, fragment: bool = False) -> str:
        jvm = self.jvm
        source = jvm.com.siemens.ct.exi.main.api.sax.EXISource(self._factory(fragment))
        transformer = jvm.javax.xml.transform.TransformerFactory.newInstance().newTransformer()
        writer = jvm.java.io.StringWriter()
        stream = jvm.org.xml.sax.InputSource(jvm.java.io.ByteArrayInputStream(data))
        transformer.transform(
            jvm.javax.xml.transform.sax.SAXSource(source.getXMLReader(), stream),
            jvm.javax.xml.transform.stream.StreamResult(writer),
        )
        return str(writer.toString())

    def document_grammar(self) -> Any:
        """DocContent: its productions are SE(G0) ... SE(Gn-1), SE(*)."""
        return self.grammars.getDocumentGrammar().getProduction(0).getNextGrammar()

    def fragment_grammar(self) -> Any:
        return self.grammars.getFragmentGrammar().getProduction(0).getNextGrammar()


def gateway() -> Any:
    """A JVM with the EXIficient jar, or a skip saying what is missing."""
    if shutil.which("java") is None:
        pytest.skip("no Java runtime: EXIficient, the EXI oracle, runs on the JVM")
    if not JAR.exists():
        pytest.skip(f"no EXIficient jar at {JAR}: run scripts/fetch_exificient.sh")
    from py4j.java_gateway import JavaGateway

    return JavaGateway.launch_gateway(
        classpath=str(JAR),
        die_on_exit=True,
        javaopts=["--add-opens", "java.base/java.lang=ALL-UNNAMED"],
    )
