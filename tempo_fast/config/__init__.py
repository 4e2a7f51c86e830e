"""Configuration: Tempo 2.10 key names and defaults, typed for tempo-fast's components."""

from tempo_fast.config.loader import (
    ConfigError,
    check_target,
    default_yaml,
    expand_env,
    known_tree,
    load,
    load_file,
)
from tempo_fast.config.model import (
    Config,
    DistributorConfig,
    IngesterConfig,
    OtlpGrpcConfig,
    OtlpHttpConfig,
    QueryFrontendConfig,
    ServerConfig,
    StorageConfig,
)
from tempo_fast.config.units import parse_duration, parse_size

__all__ = [
    "Config",
    "ConfigError",
    "DistributorConfig",
    "IngesterConfig",
    "OtlpGrpcConfig",
    "OtlpHttpConfig",
    "QueryFrontendConfig",
    "ServerConfig",
    "StorageConfig",
    "check_target",
    "default_yaml",
    "expand_env",
    "known_tree",
    "load",
    "load_file",
    "parse_duration",
    "parse_size",
]
