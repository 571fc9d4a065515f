"""TOML configuration -> frozen dataclasses.

``load_config(path)`` returns a validated ``Config`` (embedded defaults
without a path); ``load_runtime_config(path)`` also tries what the serving
commands build from it (files, certificates, checks). Every section is a
frozen dataclass in ``sections``; bad files raise ``ConfigError`` naming the
file and the key of each problem.
"""

from mailmoat.config.loader import ConfigError, load_config, parse_hostport
from mailmoat.config.preflight import load_runtime_config
from mailmoat.config.sections import (
    ActionsConfig,
    AttachmentsConfig,
    AuthConfig,
    BulkConfig,
    CheckSettings,
    ClassifierConfig,
    ClusterConfig,
    Config,
    DeliveryConfig,
    DnsblConfig,
    DnsConfig,
    GreylistConfig,
    ListsConfig,
    LogConfig,
    MilterConfig,
    PolicyConfig,
    PregreetConfig,
    ProtocolConfig,
    QuarantineConfig,
    RatelimitConfig,
    RdnsConfig,
    RelayConfig,
    ReportsConfig,
    ReputationConfig,
    RulesConfig,
    SmtpConfig,
    StatsConfig,
    StoreConfig,
    UrlblConfig,
    WebConfig,
    ZoneConfig,
)

__all__ = [
    "ActionsConfig",
    "AttachmentsConfig",
    "AuthConfig",
    "BulkConfig",
    "CheckSettings",
    "ClassifierConfig",
    "ClusterConfig",
    "Config",
    "ConfigError",
    "DeliveryConfig",
    "DnsConfig",
    "DnsblConfig",
    "GreylistConfig",
    "ListsConfig",
    "LogConfig",
    "MilterConfig",
    "PolicyConfig",
    "PregreetConfig",
    "ProtocolConfig",
    "QuarantineConfig",
    "RatelimitConfig",
    "RdnsConfig",
    "RelayConfig",
    "ReportsConfig",
    "ReputationConfig",
    "RulesConfig",
    "SmtpConfig",
    "StatsConfig",
    "StoreConfig",
    "UrlblConfig",
    "WebConfig",
    "ZoneConfig",
    "load_config",
    "load_runtime_config",
    "parse_hostport",
]
