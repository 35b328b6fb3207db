"""Polling the VTN (steps 2 and 3 of the exchange in :mod:`chargegrid.service.openadr3`): the
programs kept, the events for this VEN tracked, each applied as limits and prices when it is new
or changed, and emptied when it is gone from a complete listing."""

from __future__ import annotations

from datetime import datetime

from msgspec import UnsetType

from chargegrid.protocols import openadr3 as oadr
from chargegrid.service.openadr3.base import Tracked, VenBase
from chargegrid.service.openadr3.blocks import EventBlocks, event_blocks, targeted
from chargegrid.service.sites import SiteNotFound

REPORTED = ("USAGE", "DEMAND")


class Polling(VenBase):
    """The polling part of :class:`OpenAdr3Ven`."""

    async def poll(self) -> None:
        """Fetch the programs and events once and apply what changed."""
        programs_complete = await self._fetch_programs()
        bodies, complete = await self.http.search("events")
        now = self.clock.now()
        seen: set[str] = set()
        for body in bodies:
            try:
                event = oadr.decode_event(body)
            except oadr.OpenAdrError as exc:
                event_id = oadr.object_id(body)
                self.log.warning("OpenADR 3 event not readable", event_id=event_id, error=str(exc))
                if event_id in self.events:
                    seen.add(event_id)  # what it set holds until it can be read again
                continue
            if isinstance(event.id, UnsetType):
                self.log.warning("OpenADR 3 event without an id", program=event.program_id)
                continue
            program = self.programs.get(event.program_id)
            resource = self.options.target
            if program is None or not targeted(event.targets, self.options.ven_name, resource):
                continue
            seen.add(event.id)
            self._track(event.id, event, program, now)
        if not (complete and programs_complete):
            return  # an event not seen may be on a page not read: none is gone
        for gone in set(self.events) - seen:
            tracked = self.events.pop(gone)
            self.log.info("OpenADR 3 event gone", event_id=gone, program=tracked.event.program_id)
            self._set(gone, tracked, (), ())

    async def _fetch_programs(self) -> bool:
        """Whether the listing was complete (if not, the programs known before are kept)."""
        found: dict[str, oadr.Program] = {}
        bodies, complete = await self.http.search("programs")
        for body in bodies:
            try:
                program = oadr.decode_program(body)
            except oadr.OpenAdrError as exc:
                program_id = oadr.object_id(body)
                self.log.warning(
                    "OpenADR 3 program not readable", program=program_id, error=str(exc)
                )
                if program_id in self.programs:
                    found[program_id] = self.programs[program_id]
                continue
            if isinstance(program.id, UnsetType):
                continue
            names = self.options.program_names
            if not names or program.program_name in names:
                found[program.id] = program
        if not complete:
            found = {**self.programs, **found}
        missing = frozenset(self.options.program_names) - {p.program_name for p in found.values()}
        if missing != self._missing and missing:
            self.log.warning("OpenADR 3 programs not found at the VTN", programs=sorted(missing))
        self._missing = missing
        self.programs = found
        return complete

    def _track(
        self, event_id: str, event: oadr.Event, program: oadr.Program, now: datetime
    ) -> None:
        tracked = self.events.get(event_id)
        if tracked is None or tracked.event != event or tracked.program != program:
            fresh = Tracked(event, program, now)
            if tracked is not None:  # a change: the reports go on where they were
                fresh.since, fresh.energy_mark_wh, fresh.due = (
                    tracked.since,
                    tracked.energy_mark_wh,
                    tracked.due,
                )
                fresh.limits, fresh.prices = tracked.limits, tracked.prices
                self.log.info("OpenADR 3 event changed", event_id=event_id)
            else:
                self.log.info("OpenADR 3 event", event_id=event_id, program=program.program_name)
            self.events[event_id] = tracked = fresh
        if not tracked.applied:
            self._apply(event_id, tracked, now)

    def _apply(self, event_id: str, tracked: Tracked, now: datetime) -> None:
        try:
            site = self.sites.get(self.site_id)
        except SiteNotFound:
            self.log.warning("OpenADR 3 site not found", site=self.site_id, event_id=event_id)
            return
        circuit = self.circuit or site.root.id
        if circuit not in {c.id for c in site.circuits}:
            self.log.warning("OpenADR 3 circuit not found", site=self.site_id, circuit=circuit)
            return
        try:
            tracked.slots = oadr.event_slots(tracked.event, tracked.seen_at)
            blocks = event_blocks(tracked.event, tracked.program, site, circuit, tracked.seen_at)
        except oadr.OpenAdrError as exc:
            self.log.warning("OpenADR 3 event not applied", event_id=event_id, error=str(exc))
            blocks = EventBlocks((), (), ())
            tracked.slots = []
        for reason in blocks.ignored:
            self.log.info("OpenADR 3 payload not applied", event_id=event_id, reason=reason)
        tracked.applied = True
        tracked.asked = self._asked(event_id, tracked.event)
        end = oadr.event_end(tracked.slots)
        tracked.ended = end is not None and end <= now
        if tracked.ended:
            self._set(event_id, tracked, (), ())
        else:
            self._set(event_id, tracked, blocks.limits, blocks.prices)

    def _asked(self, event_id: str, event: oadr.Event) -> tuple[str, ...]:
        asked = [d.payload_type for d in event.report_descriptors or ()]
        others = sorted({a for a in asked if a not in REPORTED})
        if others:
            self.log.info("OpenADR 3 reports not made", event_id=event_id, payload_types=others)
        return tuple(a for a in REPORTED if a in asked)
