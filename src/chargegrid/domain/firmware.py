"""Firmware updates: where one stands, from the statuses the station reported.

OCPP 2.0.1 L01 (UpdateFirmware with a signing certificate and signature; FirmwareStatusNotification
with the request's id) and the OCPP 1.6 security whitepaper section 5 (SignedUpdateFirmware;
SignedFirmwareStatusNotification). Both versions report from the same set of statuses:

* on the way: DownloadScheduled, Downloading, DownloadPaused, Downloaded, SignatureVerified,
  InstallScheduled, Installing, InstallRebooting, Idle;
* done: Installed;
* failed: DownloadFailed, InvalidSignature, InstallVerificationFailed, InstallationFailed.

An update that has no report yet is ``Requested``. Pure functions.
"""

from __future__ import annotations

from collections.abc import Sequence

from chargegrid.domain.model import StationReport

INSTALLED = "Installed"
FAILED = frozenset(
    {"DownloadFailed", "InvalidSignature", "InstallVerificationFailed", "InstallationFailed"}
)
REQUESTED = "Requested"


def progress(reports: Sequence[StationReport], request_id: int | None) -> list[StationReport]:
    """The firmware reports of one update (``request_id``; None: a 1.6 update without one),
    oldest first."""
    mine = [r for r in reports if r.topic == "firmware" and r.request_id == request_id]
    return sorted(mine, key=lambda r: (r.timestamp is None, r.timestamp))


def state(reports: Sequence[StationReport]) -> tuple[str, bool]:
    """The latest status of an update's reports (oldest first), and whether it has ended."""
    if not reports:
        return REQUESTED, False
    status = reports[-1].status
    return status, status == INSTALLED or status in FAILED
