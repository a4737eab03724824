"""Settings of one SPU (``ha-sc spu run`` flags): its control link and its data plane."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ha_sc.model.ints import SpuId
from ha_sc.protocol import parse_address
from ha_sc.protocol.link_timing import DEFAULT_HEALTH_TIMEOUT, report_cadence_problem
from ha_sc.protocol.tls import TlsFiles
from ha_sc.spu.dataplane_settings import DataPlaneSettings

STATE_FILE_NAME = "spu-state.json"
LOGS_DIR_NAME = "logs"


def _valid_address(address: str) -> str:
    parse_address(address)
    return address


class SpuSettings(BaseModel):
    """How one SPU is started."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    spu_id: SpuId
    """This SPU's id; the SC must know it (a registered or managed SPU)."""
    sc_addresses: tuple[str, ...] = Field(min_length=1)
    """Every SC replica's private address ``host:port``; the SPU finds the leader among them."""
    public_address: str = "127.0.0.1:9005"
    """Where producers and consumers will reach this SPU."""
    private_address: str = "127.0.0.1:9006"
    """Where other SPUs will reach this SPU for replication."""
    token_file: Path | None = None
    """File (mode 0600) of the token proving ``spu_id`` to an SC started with SPU tokens
    (None: the SPU registers without one)."""
    tls: TlsFiles | None = None
    """TLS on both data ports and on the links to the SC and to leader SPUs (None: plain
    TCP); ``client_auth`` asks followers on the private port for a certificate."""
    data_dir: Path
    """Where the SPU keeps its state file and, under ``logs/``, its partition logs."""
    status_interval: float = Field(default=0.3, gt=0)
    """Seconds between status reports; the SC counts silence past its health timeout
    (1.2 s by default) as the SPU going offline, so at most a third of it (0.4 s)."""
    sc_timeout: float = Field(default=2.0, gt=0)
    """Seconds of silence from the SC (it sends a keepalive every 0.5 s) after which the
    SPU gives the connection up and looks for the leader again: how long SPUs stay with
    a leader that froze (SIGSTOP) or was cut off, while a standby has already taken
    over after the 0.8 s lease. Shorter risks leaving a live leader that is briefly
    busy (a full sync of a large store stalls it for up to a second)."""
    connect_timeout: float = Field(default=1.0, gt=0)
    """Seconds to wait for a TCP connection to an SC replica."""
    backoff_initial: float = Field(default=0.05, gt=0)
    """Seconds before retrying after a failed attempt; doubles with each failure."""
    backoff_max: float = Field(default=0.2, gt=0)
    """The longest wait between attempts."""
    state_interval: float = Field(default=0.2, gt=0)
    """The state file is written at most once per this many seconds."""
    dataplane: DataPlaneSettings = Field(default_factory=DataPlaneSettings)
    metrics_address: str | None = None
    """Where ``/metrics`` is served (``host:port``); None serves no metrics."""
    """Storage, serving and replication."""

    @field_validator("sc_addresses")
    @classmethod
    def _sc_addresses_valid(cls, addresses: tuple[str, ...]) -> tuple[str, ...]:
        for address in addresses:
            _valid_address(address)
        return addresses

    @field_validator("public_address", "private_address")
    @classmethod
    def _address_valid(cls, address: str) -> str:
        return _valid_address(address)

    @field_validator("metrics_address")
    @classmethod
    def _metrics_address_valid(cls, address: str | None) -> str | None:
        return None if address is None else _valid_address(address)

    @model_validator(mode="after")
    def _backoff_ordered(self) -> SpuSettings:
        if self.backoff_initial > self.backoff_max:
            raise ValueError(
                f"backoff_initial ({self.backoff_initial}) must not exceed "
                f"backoff_max ({self.backoff_max})"
            )
        return self

    @model_validator(mode="after")
    def _reports_often_enough(self) -> SpuSettings:
        problem = report_cadence_problem(
            status_interval=self.status_interval, health_timeout=DEFAULT_HEALTH_TIMEOUT
        )
        if problem is not None:
            raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _lag_outlasts_sc_silence(self) -> SpuSettings:
        # A leader cut off from the SC notices it within sc_timeout and from then on
        # keeps its followers in its ISR; a follower the SC promoted meanwhile stops
        # fetching, so it must not leave the old leader's ISR before that.
        if self.dataplane.lag_time <= self.sc_timeout:
            raise ValueError(
                f"the data plane's lag_time ({self.dataplane.lag_time}) must exceed "
                f"sc_timeout ({self.sc_timeout})"
            )
        return self

    @property
    def state_file(self) -> Path:
        return self.data_dir / STATE_FILE_NAME

    @property
    def logs_dir(self) -> Path:
        """Where the partition replicas' logs are: ``<logs_dir>/<topic>-<partition>/``."""
        return self.data_dir / LOGS_DIR_NAME
