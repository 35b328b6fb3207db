"""The :class:`~chargegrid.service.certificates.CertificateStore` on SQLite or PostgreSQL: a
:class:`~.side.SideStore` (a station signs a certificate every few months, not every second)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update

from chargegrid.adapters.storage import tables
from chargegrid.adapters.storage.side import SideStore, engines
from chargegrid.domain.certificates import CertificateUse, IssuedCertificate

_C = tables.certificates


def open_certificate_store(url: str) -> SqlCertificateStore:
    return SqlCertificateStore(*engines(url))


class SqlCertificateStore(SideStore):
    what = "certificate store"

    async def add(self, cert: IssuedCertificate) -> IssuedCertificate:
        values = {
            "station_id": cert.station_id,
            "use": cert.use.value,
            "serial": cert.serial,
            "subject": cert.subject,
            "not_before": cert.not_before,
            "not_after": cert.not_after,
            "chain_pem": cert.chain_pem,
            "issued_at": cert.issued_at,
            "status": cert.status,
        }
        result = await self._write(insert(_C).values(values).returning(_C.c.id))
        cert.id = int(result.scalar_one())
        return cert

    async def set_status(self, cert_id: int, status: str) -> None:
        await self._write(update(_C).where(_C.c.id == cert_id).values(status=status))

    async def of_station(self, station_id: str, limit: int = 100) -> list[IssuedCertificate]:
        rows = await self._read(
            select(_C)
            .where(_C.c.station_id == station_id)
            .order_by(_C.c.issued_at.desc(), _C.c.id.desc())
            .limit(limit)
        )
        return [_to_cert(row) for row in rows]

    async def expiring(self, before: datetime) -> list[IssuedCertificate]:
        """Per station and use, the newest installed certificate, where it ends before
        ``before``."""
        newest = (
            select(_C.c.station_id, _C.c.use, func.max(_C.c.id).label("id"))
            .where(_C.c.status == "installed")
            .group_by(_C.c.station_id, _C.c.use)
            .subquery()
        )
        rows = await self._read(
            select(_C)
            .join(newest, _C.c.id == newest.c.id)
            .where(_C.c.not_after < before)
            .order_by(_C.c.not_after)
        )
        return [_to_cert(row) for row in rows]


def _to_cert(row: Any) -> IssuedCertificate:
    return IssuedCertificate(
        id=row.id,
        station_id=row.station_id,
        use=CertificateUse(row.use),
        serial=row.serial,
        subject=row.subject,
        not_before=row.not_before,
        not_after=row.not_after,
        chain_pem=row.chain_pem,
        issued_at=row.issued_at,
        status=row.status,
    )
