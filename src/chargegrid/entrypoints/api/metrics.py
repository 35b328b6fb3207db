"""``GET /metrics``: the node's figures in the Prometheus text format.

The OCPP server and the store count in plain integers as they work (``ServerStats``,
``WriterStats``); this collector turns them into metric families when Prometheus scrapes, so
nothing of the client library runs per message. The route needs a token like the rest of the
API (Prometheus: ``authorization: {credentials: <a viewer token>}``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from itertools import accumulate
from typing import Protocol

from litestar import Response, get
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from chargegrid.adapters.storage.writer import BATCH_BOUNDS, WriterStats
from chargegrid.adapters.transport.stats import LATENCY_BOUNDS, ServerStats
from chargegrid.entrypoints.api.context import Ctx

CONTENT_TYPE = "text/plain; version=0.0.4"  # Litestar adds the charset


class Server(Protocol):
    stats: ServerStats

    def versions(self) -> Counter[str]:
        """Live connections by OCPP version."""
        ...


class Store(Protocol):
    @property
    def stats(self) -> WriterStats: ...


class MessageLogStats(Protocol):
    dropped: int  # entries the OCPP message log dropped unsaved


class ClusterStats(Protocol):
    """A node of a cluster (service.cluster.node.ClusterNode)."""

    @property
    def lease_held(self) -> bool: ...

    def peers(self) -> int:
        """The other nodes alive."""
        ...

    def remote_stations(self) -> int:
        """Stations connected to the other nodes."""
        ...

    def losses(self) -> tuple[int, int]:
        """Other nodes' event batches, and runs of their claims and releases, found missing."""
        ...


class NodeCollector(Collector):
    def __init__(
        self,
        server: Server,
        store: Store | None,
        message_log: MessageLogStats | None = None,
        *,
        node_id: str = "",
        cluster: ClusterStats | None = None,
    ) -> None:
        self.server = server
        self.store = store
        self.message_log = message_log
        self.node_id = node_id
        self.cluster = cluster

    def collect(self) -> Iterator[Metric]:
        if self.node_id:
            info = GaugeMetricFamily(
                "chargegrid_node_info", "This process: its node id (cluster mode)", labels=["node"]
            )
            info.add_metric([self.node_id], 1)
            yield info
        if self.cluster is not None:
            yield GaugeMetricFamily(
                "chargegrid_cluster_lease_held",
                "1 if this node holds the cluster's lease (runs its periodic jobs)",
                value=int(self.cluster.lease_held),
            )
            yield GaugeMetricFamily(
                "chargegrid_cluster_peers",
                "Other nodes of the cluster alive",
                value=self.cluster.peers(),
            )
            yield GaugeMetricFamily(
                "chargegrid_cluster_remote_stations",
                "Stations connected to the other nodes",
                value=self.cluster.remote_stations(),
            )
            lost, gaps = self.cluster.losses()
            yield CounterMetricFamily(
                "chargegrid_cluster_event_batches_lost",
                "Other nodes' event batches this node did not receive (NATS dropped them)",
                value=lost,
            )
            yield CounterMetricFamily(
                "chargegrid_cluster_directory_gaps",
                "Times this node missed another node's station claims or releases (and asked "
                "it for its roster)",
                value=gaps,
            )
        connected = GaugeMetricFamily(
            "chargegrid_stations_connected",
            "Stations with a live OCPP connection to this node",
            labels=["ocpp_version"],
        )
        for version, count in sorted(self.server.versions().items()):
            connected.add_metric([version], count)
        yield connected

        stats = self.server.stats
        messages = CounterMetricFamily(
            "chargegrid_ocpp_messages",
            "CALLs from stations answered, by action and result (ok or the CallError code)",
            labels=["action", "result"],
        )
        for (action, result), count in sorted(stats.messages.items()):
            messages.add_metric([action, result], count)
        yield messages

        answer = HistogramMetricFamily(
            "chargegrid_ocpp_answer_seconds",
            "Time from a station's CALL to our answer, stored first, by action",
            labels=["action"],
        )
        for action, latencies in sorted(stats.latency.items()):
            answer.add_metric([action], _buckets(LATENCY_BOUNDS, latencies.counts), latencies.total)
        yield answer

        rejected = CounterMetricFamily(
            "chargegrid_ocpp_rejected_input",
            "Messages from stations refused before reaching a handler, by CallError code",
            labels=["code"],
        )
        for code, count in sorted(stats.rejected.items()):
            rejected.add_metric([code], count)
        yield rejected
        yield CounterMetricFamily(
            "chargegrid_ocpp_refused_handshakes",
            "Connections refused before the WebSocket opened (TLS, authentication, security "
            "profile; the log says why)",
            value=stats.refused_handshakes,
        )

        if self.message_log is not None:
            yield CounterMetricFamily(
                "chargegrid_message_log_dropped",
                "Frames the OCPP message log dropped unsaved (its queue was full)",
                value=self.message_log.dropped,
            )

        if self.store is None:
            return
        writer = self.store.stats
        yield CounterMetricFamily(
            "chargegrid_store_writes", "Writes done (committed or failed)", value=writer.writes
        )
        yield CounterMetricFamily(
            "chargegrid_store_failed_writes", "Writes that failed", value=writer.failed_writes
        )
        yield CounterMetricFamily(
            "chargegrid_store_commits", "Database transactions committed", value=writer.commits
        )
        yield GaugeMetricFamily(
            "chargegrid_store_queue_depth",
            "Writes waiting for the next batch, as of the last batch",
            value=writer.queue_depth,
        )
        batches = HistogramMetricFamily(
            "chargegrid_store_batch_writes", "Writes per group-commit batch"
        )
        batches.add_metric([], _buckets(BATCH_BOUNDS, writer.batch_sizes), writer.writes)
        yield batches


def _buckets(bounds: tuple[float, ...], counts: list[int]) -> list[tuple[str, float]]:
    """Prometheus buckets (cumulative, ending with +Inf) from per-bucket counts."""
    labels = [f"{b:g}" for b in bounds] + ["+Inf"]
    return list(zip(labels, accumulate(counts), strict=True))


def registry(
    server: Server,
    store: Store | None,
    message_log: MessageLogStats | None = None,
    *,
    node_id: str = "",
    cluster: ClusterStats | None = None,
) -> CollectorRegistry:
    found = CollectorRegistry(auto_describe=False)
    found.register(NodeCollector(server, store, message_log, node_id=node_id, cluster=cluster))
    return found


@get(
    "/metrics",
    summary="The node's figures in the Prometheus text format",
    media_type=CONTENT_TYPE,
    security=[{"bearer": []}],
)
async def metrics(ctx: Ctx) -> Response[bytes]:
    body = generate_latest(ctx.metrics) if ctx.metrics is not None else b""
    return Response(body, media_type=CONTENT_TYPE)
