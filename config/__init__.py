"""Settings for waapi-dispatcher, parsed once at an entry point and passed in."""

from config.phone import normalize_e164
from config.settings import (
    DEFAULT_BASE_URL,
    ApiKeyConfig,
    ConfigError,
    Portfolio,
    ProducerToken,
    Settings,
    load_settings,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "ApiKeyConfig",
    "ConfigError",
    "Portfolio",
    "ProducerToken",
    "Settings",
    "load_settings",
    "normalize_e164",
]
