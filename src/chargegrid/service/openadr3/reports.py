"""Ends and reports (step 4 of the exchange in :mod:`chargegrid.service.openadr3`): an event whose
last interval is over is emptied; for one that asks for USAGE or DEMAND reports, a report every
``report_interval_s`` from its start and a last one when it ends, each covering the span since
the one before."""

from __future__ import annotations

from datetime import datetime, timedelta

from chargegrid.protocols import openadr3 as oadr
from chargegrid.service.openadr3.base import Tracked, VenBase
from chargegrid.service.openadr3.client import TransportError
from chargegrid.service.sites import SiteNotFound

_ZERO = timedelta(0)


class Reports(VenBase):
    """The ends and reports part of :class:`OpenAdr3Ven`."""

    async def tick(self) -> None:
        """End the events whose last interval is over; send the reports that are due."""
        now = self.clock.now()
        for event_id, tracked in list(self.events.items()):
            if not tracked.applied:
                continue
            end = oadr.event_end(tracked.slots)
            if not tracked.ended and end is not None and end <= now:
                tracked.ended = True
                self.log.info("OpenADR 3 event ended", event_id=event_id)
                self._set(event_id, tracked, (), ())
            if tracked.asked and tracked.slots:
                await self._report_if_due(event_id, tracked, now, end)

    async def _report_if_due(
        self, event_id: str, tracked: Tracked, now: datetime, end: datetime | None
    ) -> None:
        start = min(s.start for s in tracked.slots)
        if now < start or tracked.final_sent:
            return
        if tracked.since is None:
            if end is not None and tracked.seen_at >= end:
                tracked.final_sent = True  # over before the VEN saw it: nothing it measured
                return
            tracked.since = max(start, tracked.seen_at)
            tracked.energy_mark_wh = self.energy_wh
            tracked.due = tracked.since + timedelta(seconds=self.options.report_interval_s)
        final = tracked.ended and end is not None
        if not final and (tracked.due is None or now < tracked.due):
            return
        until = min(now, end) if final and end is not None else now
        tracked.due = now + timedelta(seconds=self.options.report_interval_s)
        if await self._report(event_id, tracked, tracked.since, until):
            tracked.since, tracked.energy_mark_wh = until, self.energy_wh
            tracked.final_sent = final

    async def _report(
        self, event_id: str, tracked: Tracked, since: datetime, until: datetime
    ) -> bool:
        usage_kwh = max(0.0, float(self.energy_wh - tracked.energy_mark_wh) / 1000.0)
        try:
            demand_kw = max(0.0, self.balancer.site_power_w(self.site_id, self.circuit) / 1000.0)
        except SiteNotFound:
            demand_kw = 0.0
        values = {"USAGE": (round(usage_kwh, 3), "KWH"), "DEMAND": (round(demand_kw, 3), "KW")}
        interval_id = next(
            (s.interval_id for s in reversed(tracked.slots) if s.start <= since),
            tracked.slots[0].interval_id,
        )
        report = oadr.Report(
            program_id=tracked.event.program_id,
            event_id=event_id,
            client_name=self.options.ven_name,
            report_name=f"{self.options.ven_name} {self.options.target} {since.isoformat()}",
            payload_descriptors=tuple(
                oadr.ReportPayloadDescriptor(
                    object_type="REPORT_PAYLOAD_DESCRIPTOR",
                    payload_type=kind,
                    reading_type="DIRECT_READ",
                    units=values[kind][1],
                )
                for kind in tracked.asked
            ),
            resources=(
                oadr.ReportResource(
                    resource_name=self.options.target,
                    intervals=(
                        oadr.Interval(
                            id=interval_id,
                            interval_period=oadr.IntervalPeriod(
                                start=since, duration=oadr.Duration.of(max(until - since, _ZERO))
                            ),
                            payloads=tuple(
                                oadr.ValuesMap(type=kind, values=(values[kind][0],))
                                for kind in tracked.asked
                            ),
                        ),
                    ),
                ),
            ),
        )
        try:
            await self.http.call(
                "POST", oadr.collection_url(self.base_url, "reports"), oadr.encode(report)
            )
        except (TransportError, oadr.OpenAdrError) as exc:
            self.log.warning("OpenADR 3 report not delivered", event_id=event_id, error=str(exc))
            return False
        self.log.info("OpenADR 3 report sent", event_id=event_id, usage_kwh=values["USAGE"][0])
        return True
