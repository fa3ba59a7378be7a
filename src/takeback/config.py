"""Settings, from TAKEBACK_* environment variables; one object passed down."""

from __future__ import annotations

from pathlib import Path

from platformdirs import user_cache_dir
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TAKEBACK_", extra="ignore")

    #: Where the on-device "already hashed" cache lives (hashes, no file names).
    cache_dir: Path = Field(default_factory=lambda: Path(user_cache_dir("takeback")))
    #: Hashing worker processes; 0 hashes in the calling process.
    workers: int | None = Field(default=None, ge=0)
    #: Images above this many pixels are refused (decompression bombs).
    max_image_pixels: int = Field(default=250_000_000, gt=0)

    @property
    def cache_path(self) -> Path:
        return self.cache_dir / "hash-cache.sqlite3"


def load() -> Settings:
    return Settings()
