"""Settings: defaults, then a TOML file, then ``CHARGEGRID_*`` environment variables, then flags.

Each later source overrides the earlier ones. The names are an interface other tools rely on:
``--host``, ``--ocpp-port``, ``--db``, ``--unknown-stations`` and their ``CHARGEGRID_HOST``,
``CHARGEGRID_OCPP_PORT``, ``CHARGEGRID_DB``, ``CHARGEGRID_UNKNOWN_STATIONS`` twins; in TOML the
same names with underscores (``ocpp_port = 9000``), at the top level or under ``[chargegrid]``.
"""

from __future__ import annotations

import argparse
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any


class SettingsError(ValueError):
    """A setting with a value chargegrid cannot use; the message names the setting."""


@dataclass(frozen=True)
class Settings:
    host: str = "0.0.0.0"  # noqa: S104 - stations reach the CSMS over the network
    ocpp_port: int = 9000
    api_port: int = 8080
    db: str = "sqlite:///chargegrid.db"
    unknown_stations: str = "pending"
    path_prefixes: tuple[str, ...] = ("/ocpp",)
    ping_interval: float = 60.0
    call_timeout: float = 30.0
    heartbeat_interval: int = 300
    boot_rate: float = 250.0  # boots taken per second; more are answered Pending (0: no pacing)
    require_auth: bool = False
    # TLS (security profiles 2 and 3): wss:// on tls_port when a certificate and key are given
    tls_port: int = 9443
    tls_cert: str = ""  # PEM: the server certificate, then its intermediate CAs
    tls_key: str = ""  # PEM, unencrypted; readable by chargegrid only
    tls_client_ca: str = ""  # PEM CAs that station certificates must chain to (profile 3)
    station_organization: str = ""  # the O every station certificate must carry, if set
    # chargegrid's CPO CA (ca.key, ca.pem), made on first use; "": chargegrid-ca beside the
    # SQLite database, or in the working directory
    ca_dir: str = ""
    # Plug & Charge: PEM bundle of the MO / V2G roots (and sub-CAs) contracts chain to; the OPCP
    # contract-certificate pool Get15118EVCertificate goes to, and its token (never a flag)
    v2g_trust: str = ""
    contract_provider: str = ""
    contract_provider_token: str = field(default="", repr=False)
    # OSCP 2.0 (chargegrid as Flexibility Provider): the base URL Capacity Providers reach it at
    # (default: http://HOST:API_PORT/oscp/fp/2.0) and how often it reports measurements; whether
    # each peer also gets UpdateAssetMeasurements (a message for a Capacity Optimizer)
    oscp_url: str = ""
    oscp_measurement_interval: float = 900.0
    oscp_asset_measurements: bool = False
    # OpenADR 2.0b VEN, on when a VTN URL is given: the VTN's base URL (.../OpenADR2/Simple/2.0b),
    # this VEN's name (and venID if the VTN gave one out of band), the site (or site/circuit) its
    # events limit; client certificate and key (TLS and message signing; the key's path only,
    # it is never read into the settings) with the CAs of the VTN's certificate, the VTN's
    # certificate fingerprint (checks its signatures), the opt policy (in / out), the shortest
    # report interval offered (s), the share of a circuit's limits at SIMPLE levels 0 to 3
    openadr2_vtn_url: str = ""
    openadr2_ven_name: str = "chargegrid"
    openadr2_ven_id: str = ""
    openadr2_site: str = ""
    openadr2_cert: str = ""
    openadr2_key: str = ""
    openadr2_ca: str = ""
    openadr2_vtn_fingerprint: str = ""
    openadr2_opt: str = "in"
    openadr2_report_interval: float = 10.0
    openadr2_simple_levels: tuple[str, ...] = ("1", "0.75", "0.5", "0")
    # OpenADR 3 VEN, on when a VTN URL is given: the VTN's base URL (.../openadr3/3.0.1), the
    # OAuth 2.0 client id and secret (never a flag), the token URL ("": {url}/auth/token), the
    # site (or site/circuit) its events limit, the program names followed (none: all), the VEN's
    # name (the reports' clientName), seconds between polls and between reports
    openadr3_vtn_url: str = ""
    openadr3_client_id: str = ""
    openadr3_client_secret: str = field(default="", repr=False)
    openadr3_token_url: str = ""
    openadr3_site: str = ""
    openadr3_programs: tuple[str, ...] = ()
    openadr3_ven_name: str = "chargegrid"
    openadr3_poll_interval: float = 30.0
    openadr3_report_interval: float = 900.0
    # Cluster mode: the NATS server(s) nodes on the same PostgreSQL database meet at
    # (comma-separated nats:// URLs, may carry user:password@); "": a single node, nothing of
    # NATS needed. The secret every message between nodes is authenticated with (at least 32
    # characters; never a flag); TLS to NATS (CAs, client certificate and key) and this node's
    # NATS credentials (.creds or nkey seed file); seconds of silence before a node is gone
    cluster: str = field(default="", repr=False)
    cluster_secret: str = field(default="", repr=False)
    cluster_tls_ca: str = ""
    cluster_tls_cert: str = ""
    cluster_tls_key: str = ""
    cluster_creds: str = ""
    cluster_dead_after: float = 10.0
    log_format: str = "console"
    log_level: str = "info"
    message_log_days: int = 7  # days the OCPP message log keeps frames; 0: no log
    # An admin token of the REST API that lives only in the environment (CHARGEGRID_ADMIN_TOKEN)
    # or the settings file; never a flag, which other users could read in the process list.
    admin_token: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if self.unknown_stations not in ("accept", "pending", "reject"):
            raise SettingsError("unknown_stations must be accept, pending or reject")
        if not 0 <= self.ocpp_port <= 65535:
            raise SettingsError("ocpp_port must be a TCP port number")
        if not 0 <= self.api_port <= 65535:
            raise SettingsError("api_port must be a TCP port number")
        if not 0 <= self.tls_port <= 65535:
            raise SettingsError("tls_port must be a TCP port number")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise SettingsError("tls_cert and tls_key go together")
        if self.tls_client_ca and not self.tls_cert:
            raise SettingsError("tls_client_ca needs tls_cert and tls_key (TLS is profile 2 and 3)")
        if self.admin_token and len(self.admin_token) < 16:
            raise SettingsError("admin_token must have at least 16 characters")
        if self.log_format not in ("console", "json"):
            raise SettingsError("log_format must be console or json")
        if self.message_log_days < 0:
            raise SettingsError("message_log_days must be 0 (off) or more")
        if not self.boot_rate >= 0:
            raise SettingsError("boot_rate must be 0 (no pacing) or more")
        _check_openadr3(self)
        _check_openadr2(self)
        _check_cluster(self)


def _check_cluster(settings: Settings) -> None:
    if bool(settings.cluster_tls_cert) != bool(settings.cluster_tls_key):
        raise SettingsError("cluster_tls_cert and cluster_tls_key go together")
    if not settings.cluster_dead_after >= 2:
        raise SettingsError("cluster_dead_after must be at least 2 s (nodes beat every second)")
    if not settings.cluster:
        return
    servers = [s.strip() for s in settings.cluster.split(",") if s.strip()]
    if not servers or not all(s.startswith(("nats://", "tls://")) for s in servers):
        raise SettingsError("cluster must be nats:// (or tls://) URLs of the NATS server(s)")
    if not settings.db.startswith(("postgresql", "postgres")):
        raise SettingsError("cluster needs a PostgreSQL database (db), shared by every node")
    if len(settings.cluster_secret) < 32:
        raise SettingsError(
            "cluster needs cluster_secret, of at least 32 characters, the same on every node "
            "(CHARGEGRID_CLUSTER_SECRET or the settings file)"
        )


def _check_openadr2(settings: Settings) -> None:
    if settings.openadr2_opt not in ("in", "out"):
        raise SettingsError("openadr2_opt must be in or out")
    if bool(settings.openadr2_cert) != bool(settings.openadr2_key):
        raise SettingsError("openadr2_cert and openadr2_key go together")
    if settings.openadr2_cert and not settings.openadr2_ca:
        raise SettingsError("openadr2_cert needs openadr2_ca (the CAs of the VTN's certificate)")
    if not settings.openadr2_report_interval >= 1:
        raise SettingsError("openadr2_report_interval must be at least 1 s")
    try:
        levels = openadr2_levels(settings)
    except ValueError:
        levels = ()
    if len(levels) != 4 or not all(0 <= share <= 1 for share in levels):
        raise SettingsError("openadr2_simple_levels must be four shares from 0 to 1")
    url = settings.openadr2_vtn_url
    if not url:
        return
    if not url.startswith(("http://", "https://")):
        raise SettingsError("openadr2_vtn_url must be an http:// or https:// URL")
    site_id, _, circuit = settings.openadr2_site.partition("/")
    if not site_id or "/" in circuit:
        raise SettingsError("openadr2_site must name the site (or site/circuit) the VEN limits")
    if not settings.openadr2_ven_name:
        raise SettingsError("openadr2_ven_name must not be empty")


def openadr2_levels(settings: Settings) -> tuple[float, ...]:
    """The shares of SIMPLE levels 0 to 3, as numbers."""
    return tuple(float(share) for share in settings.openadr2_simple_levels)


def _check_openadr3(settings: Settings) -> None:
    if not settings.openadr3_poll_interval > 0:
        raise SettingsError("openadr3_poll_interval must be more than 0 s")
    if not settings.openadr3_report_interval >= 1:
        raise SettingsError("openadr3_report_interval must be at least 1 s")
    url = settings.openadr3_vtn_url
    if not url:
        return
    for name in ("openadr3_vtn_url", "openadr3_token_url"):
        value = getattr(settings, name)
        if value and not value.startswith(("http://", "https://")):
            raise SettingsError(f"{name} must be an http:// or https:// URL")
    site_id, _, circuit = settings.openadr3_site.partition("/")
    if not site_id or "/" in circuit:
        raise SettingsError("openadr3_site must name the site (or site/circuit) the VEN limits")
    if not 1 <= len(settings.openadr3_ven_name) <= 128:
        raise SettingsError("openadr3_ven_name must have 1 to 128 characters")
    if settings.openadr3_client_id and not settings.openadr3_client_secret:
        raise SettingsError(
            "openadr3_client_id needs openadr3_client_secret "
            "(CHARGEGRID_OPENADR3_CLIENT_SECRET or the settings file)"
        )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``chargegrid serve``; every default is None so unset flags do not override."""
    parser.add_argument("--config", type=Path, help="TOML settings file")
    parser.add_argument("--host", help="address to listen on (default 0.0.0.0)")
    parser.add_argument("--ocpp-port", type=int, help="OCPP WebSocket port (default 9000)")
    parser.add_argument("--api-port", type=int, help="REST API and dashboard port (default 8080)")
    parser.add_argument("--db", help="SQLAlchemy database URL (default sqlite:///chargegrid.db)")
    parser.add_argument(
        "--unknown-stations",
        choices=["accept", "pending", "reject"],
        help="BootNotification answer for stations not in the database (default pending)",
    )
    parser.add_argument(
        "--path-prefix",
        dest="path_prefixes",
        action="append",
        help="URL path under which /<stationId> is served (repeatable; default /ocpp)",
    )
    parser.add_argument("--ping-interval", type=float, help="WebSocket ping interval, s (0: off)")
    parser.add_argument("--call-timeout", type=float, help="seconds to wait for a station's answer")
    parser.add_argument(
        "--heartbeat-interval", type=int, help="heartbeat interval given at boot, s"
    )
    parser.add_argument(
        "--boot-rate",
        type=float,
        help="BootNotifications taken per second; more are answered Pending (0: no pacing)",
    )
    parser.add_argument(
        "--require-auth",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="refuse stations without a password (security profile 1 for all)",
    )
    parser.add_argument("--tls-port", type=int, help="wss:// port for stations (default 9443)")
    parser.add_argument(
        "--tls-cert", help="server certificate (PEM, with its chain): turns on the TLS port"
    )
    parser.add_argument("--tls-key", help="the server certificate's private key (PEM)")
    parser.add_argument(
        "--tls-client-ca", help="CAs (PEM) that stations' client certificates chain to"
    )
    parser.add_argument(
        "--station-organization",
        help="organizationName every station client certificate must carry",
    )
    parser.add_argument(
        "--ca-dir",
        help="folder of the CPO CA that signs station certificates (made on first use; default "
        "chargegrid-ca beside the SQLite database)",
    )
    parser.add_argument(
        "--v2g-trust",
        help="PEM bundle of the MO / V2G roots (and sub-CAs) Plug & Charge contracts chain to",
    )
    parser.add_argument(
        "--contract-provider",
        help="for Get15118EVCertificate: base URL of an OPCP contract certificate pool (its "
        "token: CHARGEGRID_CONTRACT_PROVIDER_TOKEN), or the folder of a test PKI (chargegrid pki "
        "init) for the built-in provider of tests and demos",
    )
    parser.add_argument(
        "--oscp-url",
        help="the OSCP 2.0 base URL Capacity Providers reach chargegrid at "
        "(default http://HOST:API_PORT/oscp/fp/2.0)",
    )
    parser.add_argument(
        "--oscp-measurement-interval",
        type=float,
        help="seconds between OSCP UpdateGroupMeasurements (default 900)",
    )
    parser.add_argument(
        "--oscp-asset-measurements",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="send OSCP peers UpdateAssetMeasurements (each EVSE) with the group ones, for a "
        "Capacity Provider that is also the Capacity Optimizer",
    )
    parser.add_argument(
        "--openadr2-vtn-url",
        help="OpenADR 2.0b: the VTN's base URL (e.g. https://vtn.example/OpenADR2/Simple/2.0b); "
        "turns the VEN on",
    )
    parser.add_argument("--openadr2-ven-name", help="OpenADR 2.0b: this VEN's name")
    parser.add_argument(
        "--openadr2-ven-id", help="OpenADR 2.0b: the venID, if the VTN gave one out of band"
    )
    parser.add_argument(
        "--openadr2-site", help="OpenADR 2.0b: the site (or site/circuit) events limit"
    )
    parser.add_argument(
        "--openadr2-cert",
        help="OpenADR 2.0b: client certificate (PEM) for TLS and signing; with --openadr2-key "
        "and --openadr2-ca",
    )
    parser.add_argument("--openadr2-key", help="OpenADR 2.0b: the client certificate's key")
    parser.add_argument("--openadr2-ca", help="OpenADR 2.0b: CAs (PEM) of the VTN's certificate")
    parser.add_argument(
        "--openadr2-vtn-fingerprint",
        help="OpenADR 2.0b: the VTN certificate's fingerprint; its messages' signatures are "
        "checked against it",
    )
    parser.add_argument(
        "--openadr2-opt",
        choices=["in", "out"],
        help="OpenADR 2.0b: opt in to events and apply them (default), or opt out of all",
    )
    parser.add_argument(
        "--openadr2-report-interval",
        type=float,
        help="OpenADR 2.0b: shortest TELEMETRY_USAGE report interval offered, s (default 10)",
    )
    parser.add_argument(
        "--openadr2-simple-levels",
        help="OpenADR 2.0b: share of a circuit's limits at SIMPLE levels 0,1,2,3 "
        "(default 1,0.75,0.5,0)",
    )
    parser.add_argument(
        "--openadr3-vtn-url",
        help="OpenADR 3: the VTN's base URL (e.g. https://vtn.example/openadr3/3.0.1); turns the "
        "VEN on (client secret: CHARGEGRID_OPENADR3_CLIENT_SECRET)",
    )
    parser.add_argument("--openadr3-client-id", help="OpenADR 3: the VEN's OAuth 2.0 client id")
    parser.add_argument(
        "--openadr3-token-url", help="OpenADR 3: the token endpoint (default VTN_URL/auth/token)"
    )
    parser.add_argument(
        "--openadr3-site", help="OpenADR 3: the site (or site/circuit) events limit"
    )
    parser.add_argument(
        "--openadr3-programs",
        help="OpenADR 3: comma-separated program names to follow (default: all the VTN lists)",
    )
    parser.add_argument(
        "--openadr3-ven-name", help="OpenADR 3: this VEN's name, its reports' clientName"
    )
    parser.add_argument(
        "--openadr3-poll-interval",
        type=float,
        help="OpenADR 3: seconds between polls of programs and events (default 30)",
    )
    parser.add_argument(
        "--openadr3-report-interval",
        type=float,
        help="OpenADR 3: seconds between reports on an event that asks for them (default 900)",
    )
    parser.add_argument(
        "--cluster",
        help="cluster mode: the NATS server URL(s) (nats://host:4222) of the nodes sharing this "
        "PostgreSQL database (or CHARGEGRID_CLUSTER; its secret: CHARGEGRID_CLUSTER_SECRET)",
    )
    parser.add_argument(
        "--cluster-tls-ca", help="cluster mode: CAs (PEM) of the NATS servers' certificates (TLS)"
    )
    parser.add_argument(
        "--cluster-tls-cert", help="cluster mode: client certificate (PEM) for mutual TLS to NATS"
    )
    parser.add_argument("--cluster-tls-key", help="cluster mode: the client certificate's key")
    parser.add_argument(
        "--cluster-creds", help="cluster mode: NATS credentials file (.creds, or an nkey seed)"
    )
    parser.add_argument(
        "--cluster-dead-after",
        type=float,
        help="cluster mode: seconds without a node's beat before it is declared gone (default 10)",
    )
    parser.add_argument("--log-format", choices=["console", "json"])
    parser.add_argument(
        "--message-log-days",
        type=int,
        help="days the OCPP message log keeps every frame (default 7; 0: off)",
    )
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"])


def load(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Settings:
    """Merge the sources in order of precedence."""
    environ = os.environ if environ is None else environ
    settings = Settings()
    config = getattr(args, "config", None) or environ.get("CHARGEGRID_CONFIG")
    if config:
        settings = _merge(settings, _from_toml(Path(config)), "config file")
    settings = _merge(settings, _from_env(environ), "environment")
    flags = {f.name: getattr(args, f.name, None) for f in fields(Settings)}
    return _merge(settings, {k: v for k, v in flags.items() if v is not None}, "flags")


def _from_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"cannot read settings file {path}: {exc}") from exc
    section = data.get("chargegrid", data)
    return dict(section) if isinstance(section, dict) else {}


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for f in fields(Settings):
        value = environ.get(f"CHARGEGRID_{f.name.upper()}")
        if value is not None:
            found[f.name] = value
    return found


def _merge(settings: Settings, values: Mapping[str, Any], source: str) -> Settings:
    known = {f.name: f for f in fields(Settings)}
    changes: dict[str, Any] = {}
    for name, value in values.items():
        if name not in known:
            raise SettingsError(f"unknown setting {name!r} in {source}")
        changes[name] = _coerce(name, value, getattr(settings, name), source)
    try:
        return replace(settings, **changes)
    except SettingsError as exc:
        raise SettingsError(f"{exc} (from {source})") from exc


def _coerce(name: str, value: Any, current: Any, source: str) -> Any:
    try:
        if isinstance(current, bool):
            if isinstance(value, str):
                return value.strip().lower() in ("1", "true", "yes", "on")
            return bool(value)
        if isinstance(current, tuple):
            items: Sequence[Any] = value.split(",") if isinstance(value, str) else value
            return tuple(str(v).strip() for v in items if str(v).strip())
        return type(current)(value)
    except (TypeError, ValueError) as exc:
        raise SettingsError(
            f"{name} from {source}: {value!r} is not a {type(current).__name__}"
        ) from exc


def ca_folder(settings: Settings) -> Path:
    """Where the CPO CA lives: ``ca_dir``, else ``chargegrid-ca`` beside a SQLite database file,
    else in the working directory."""
    if settings.ca_dir:
        return Path(settings.ca_dir)
    if settings.db.startswith("sqlite"):
        database = settings.db.split("///", 1)[-1].split("?", 1)[0]
        if database and database != ":memory:" and not settings.db.endswith(":memory:"):
            return Path(database).parent / "chargegrid-ca"
    return Path("chargegrid-ca")
