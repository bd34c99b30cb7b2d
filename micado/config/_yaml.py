"""The earlier, private name of :mod:`micado.config.bounded_yaml`, kept for code not yet moved to it."""

from micado.config.bounded_yaml import (
    MAX_ALIAS_NODES,
    MAX_DEPTH,
    MAX_NODES,
    MAX_YAML_BYTES,
    Refused,
    YamlSyntaxError,
    depth_of,
    read_limited,
    safe_load,
)

__all__ = [
    "MAX_YAML_BYTES", "MAX_NODES", "MAX_DEPTH", "MAX_ALIAS_NODES", "YamlSyntaxError", "Refused", "read_limited",
    "safe_load", "depth_of",
]
