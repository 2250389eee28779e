"""NATS JetStream as the ingestion log: the stream, the messages, publishing a batch, pulling one.

The embedded default stores an event inside the request. With a log, `ratecard serve --log
nats://…` answers once JetStream has persisted the batch, and `ratecard worker` processes pull
batches from one durable consumer and store them through the same ingest path; each message is
acknowledged only after the store committed it. Resends are dropped twice: by JetStream's
duplicate window (the message id is the event's id in its environment), then by the store's
uniqueness on (environment, id), which stays the final guard (a worker killed after its commit
and before its acknowledgement gets the batch again; its events then count as duplicates).

The stream (created, or checked, when a server or a worker starts):
  name        --log-stream (default RATECARD_EVENTS)
  subjects    <name>.<environment>   (<name>.> on the stream: one subject per environment)
  retention   work queue: a message is deleted once a worker acknowledged it (the store is the
              record; the log is the buffer in front of it)
  storage     file; duplicate window --log-dedup-window (default 10 minutes); max age 7 days
The consumer: durable `ratecard-workers` (pull, explicit acknowledgement, redelivered after
--ack-wait seconds without one), shared by every worker.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

import msgspec

from .records import RawEvent

DEFAULT_STREAM = "RATECARD_EVENTS"
DEFAULT_DURABLE = "ratecard-workers"
DEFAULT_DEDUP_WINDOW = 600.0  # seconds
DEFAULT_MAX_AGE = 7 * 24 * 3600.0
DEFAULT_ACK_WAIT = 30.0
ENVIRONMENT_HEADER = "Ratecard-Environment"
ACCEPTED_HEADER = "Ratecard-Accepted-Us"  # when the server accepted the event (µs since epoch, wall clock)
MSG_ID_HEADER = "Nats-Msg-Id"
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_PLAIN_ID = re.compile(r"[\x21-\x7e]{1,200}")  # printable ASCII without spaces: safe in a header as it is
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(RawEvent).decode


_logger = logging.getLogger("ratecard.eventlog")


class LogError(Exception):
    """The log is unreachable, did not confirm, or its stream is not the one ratecard needs."""


@dataclass(frozen=True)
class LogSettings:
    url: str
    stream: str = DEFAULT_STREAM
    durable: str = DEFAULT_DURABLE
    dedup_window: float = DEFAULT_DEDUP_WINDOW
    max_age: float = DEFAULT_MAX_AGE
    ack_wait: float = DEFAULT_ACK_WAIT
    publish_timeout: float = 10.0

    def __post_init__(self) -> None:
        if not self.url.startswith(("nats://", "tls://")):
            raise LogError(f"--log {self.url}: give a NATS URL, nats://host:4222")
        for label, value in (("--log-stream", self.stream), ("the consumer name", self.durable)):
            if not _NAME.fullmatch(value):
                raise LogError(f"{label} {value!r}: letters, digits, '-' and '_' only, at most 64")
        if not 1 <= self.dedup_window <= 7 * 24 * 3600:
            raise LogError("--log-dedup-window: between 1 second and 7 days")
        if not 1 <= self.ack_wait <= 3600:
            raise LogError("--ack-wait: between 1 second and 1 hour")

    def subject(self, environment: str) -> str:
        return f"{self.stream}.{environment}"

    @property
    def subjects(self) -> list[str]:
        return [f"{self.stream}.>"]


def message_id(environment: str, event_id: str) -> str:
    """JetStream's deduplication key: `<environment>:<event id>` (ids are unique per environment);
    an id a header cannot carry as it is (spaces, non-ASCII, very long), or one that looks like a
    hash, is hashed: `<environment>:sha256:<hex>`."""
    if _PLAIN_ID.fullmatch(event_id) and not event_id.startswith("sha256:"):  # never mistaken for a hash
        return f"{environment}:{event_id}"
    digest = hashlib.sha256(f"{environment}\x00{event_id}".encode()).hexdigest()
    return f"{environment}:sha256:{digest}"


def encode_event(raw: RawEvent) -> bytes:
    return _encode(raw)


def decode_event(payload: bytes) -> RawEvent | None:
    """The event a message carries; None for a payload that is not one (never published by ratecard)."""
    try:
        return _decode(payload)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None


async def _quiet(_: Exception) -> None:
    pass


async def _report(error: Exception) -> None:
    """A connection problem (NATS restarting, say) in one line; the client reconnects by itself."""
    _logger.warning("event log connection: %s", error or type(error).__name__)


async def connect(settings: LogSettings, *, name: str) -> Any:
    """A connection that reconnects for ever (a NATS restart is waited out, not fatal)."""
    import nats

    try:
        # a refused connection fails at once (the reconnecting client below would retry it until
        # its timeout); once connected, the real connection reconnects for ever
        probe = await asyncio.wait_for(nats.connect(settings.url, connect_timeout=3, max_reconnect_attempts=1,
                                                    reconnect_time_wait=0.05, error_cb=_quiet), timeout=4)
        await probe.close()
        return await asyncio.wait_for(nats.connect(settings.url, name=name, connect_timeout=3,
                                                   max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                                                   allow_reconnect=True, error_cb=_report), timeout=4)
    except TimeoutError:
        raise LogError(f"cannot reach the event log at {settings.url}: no answer within 4 s") from None
    except Exception as exc:  # noqa: BLE001 - nats raises several kinds (OSError, NoServersError, timeouts)
        raise LogError(f"cannot reach the event log at {settings.url}: {exc or type(exc).__name__}") from None


async def ensure_stream(js: Any, settings: LogSettings) -> None:
    """Create the stream, or check that the existing one is what ratecard needs (never changed silently)."""
    from nats.js.api import RetentionPolicy, StorageType, StreamConfig
    from nats.js.errors import NotFoundError

    try:
        info = await js.stream_info(settings.stream)
    except NotFoundError:
        config = StreamConfig(name=settings.stream, subjects=settings.subjects, retention=RetentionPolicy.WORK_QUEUE,
                              storage=StorageType.FILE, duplicate_window=settings.dedup_window,
                              max_age=settings.max_age)
        await js.add_stream(config)
        return
    config = info.config
    problems = []
    if config.retention != RetentionPolicy.WORK_QUEUE:
        problems.append(f"retention {getattr(config.retention, 'value', config.retention)} (needs workqueue)")
    if list(config.subjects or []) != settings.subjects:
        problems.append(f"subjects {config.subjects} (needs {settings.subjects})")
    if abs((config.duplicate_window or 0) - settings.dedup_window) > 0.001:
        problems.append(f"duplicate window {config.duplicate_window:g}s (--log-dedup-window {settings.dedup_window:g})")
    if problems:
        raise LogError(f"the stream {settings.stream} exists with {', '.join(problems)}; give another --log-stream, "
                       "or change the stream with the nats CLI")


async def ensure_consumer(js: Any, settings: LogSettings, max_ack_pending: int) -> None:
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
    from nats.js.errors import NotFoundError

    try:
        await js.consumer_info(settings.stream, settings.durable)
        return
    except NotFoundError:
        pass
    config = ConsumerConfig(durable_name=settings.durable, ack_policy=AckPolicy.EXPLICIT,
                            deliver_policy=DeliverPolicy.ALL, ack_wait=settings.ack_wait,
                            max_ack_pending=max_ack_pending, filter_subject=settings.subjects[0])
    await js.add_consumer(settings.stream, config)  # the same config twice (two workers at once) is accepted


@dataclass
class Published:
    queued: int = 0
    duplicates: int = 0


class Publisher:
    """One per server process, in its event loop: publishes a batch and waits for every acknowledgement."""

    def __init__(self, settings: LogSettings) -> None:
        self.settings = settings
        self._nc: Any = None
        self._js: Any = None
        self._lock = asyncio.Lock()

    async def _jetstream(self) -> Any:
        if self._js is None:
            async with self._lock:
                if self._js is None:
                    self._nc = await connect(self.settings, name="ratecard-serve")
                    self._js = self._nc.jetstream(timeout=self.settings.publish_timeout)
        return self._js

    async def publish(self, environment: str, events: list[tuple[str, RawEvent]]) -> Published:
        """Publish (event id, event) pairs; returns once JetStream persisted all of them (LogError if not:
        the caller answers that the batch must be sent again; what was persisted is dropped as a resend)."""
        js = await self._jetstream()
        subject = self.settings.subject(environment)
        accepted = str(time.time_ns() // 1000)
        futures: list[asyncio.Future] = []

        async def publish_all() -> list[Any]:
            # wait_stall=None: publish_async then does not yield between messages (with a timeout it
            # would, and the client would write each message in a syscall of its own); the whole batch
            # is bounded by the timeout below instead
            for event_id, raw in events:
                headers = {MSG_ID_HEADER: message_id(environment, event_id), ENVIRONMENT_HEADER: environment,
                           ACCEPTED_HEADER: accepted}
                futures.append(await js.publish_async(subject, encode_event(raw), headers=headers))
            return await asyncio.gather(*futures)

        try:
            acks = await asyncio.wait_for(publish_all(), timeout=self.settings.publish_timeout)
        except Exception as exc:  # noqa: BLE001 - timeouts, a stalled or closed connection, a stream error
            for future in futures:
                future.cancel()
            raise LogError(f"the event log did not confirm the batch ({type(exc).__name__})") from None
        result = Published()
        for ack in acks:
            if ack.duplicate:
                result.duplicates += 1
            else:
                result.queued += 1
        return result

    async def close(self) -> None:
        if self._nc is not None:
            try:
                await self._nc.drain()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass
            self._nc = self._js = None


async def check_stream(settings: LogSettings) -> None:
    """Connect once, create or check the stream, disconnect (what `ratecard serve --log` does at start)."""
    nc = await connect(settings, name="ratecard-setup")
    try:
        await ensure_stream(nc.jetstream(), settings)
    except LogError:
        raise
    except Exception as exc:  # noqa: BLE001 - JetStream disabled, no permission, …
        raise LogError(f"the event log at {settings.url} refused the stream {settings.stream}: {exc}") from None
    finally:
        await nc.close()


@dataclass
class Delivery:
    """One pulled message: the event it carries (None when unreadable), its environment, acceptance time."""

    message: Any
    environment: str
    event: RawEvent | None
    accepted_us: int | None


class Consumer:
    """One worker's pull subscription on the shared durable consumer."""

    def __init__(self, settings: LogSettings, batch: int) -> None:
        self.settings = settings
        self.batch = batch
        self._nc: Any = None
        self._sub: Any = None

    async def open(self) -> None:
        self._nc = await connect(self.settings, name="ratecard-worker")
        js = self._nc.jetstream()
        try:
            await ensure_stream(js, self.settings)
            await ensure_consumer(js, self.settings, max_ack_pending=max(1000, self.batch * 20))
        except LogError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise LogError(f"the event log at {self.settings.url} refused the consumer: {exc}") from None
        self._sub = await js.pull_subscribe_bind(self.settings.durable, self.settings.stream)

    async def fetch(self, wait: float) -> list[Delivery]:
        """Up to `batch` messages, waiting at most `wait` seconds for the first ones."""
        from nats.errors import TimeoutError as NatsTimeout

        try:
            messages = await self._sub.fetch(self.batch, timeout=wait)
        except (TimeoutError, NatsTimeout):
            return []
        deliveries = []
        for message in messages:
            headers = message.headers or {}
            accepted = headers.get(ACCEPTED_HEADER)
            environment = headers.get(ENVIRONMENT_HEADER) or message.subject.rsplit(".", 1)[-1]
            deliveries.append(Delivery(message, environment, decode_event(message.data),
                                       int(accepted) if accepted and accepted.isdigit() else None))
        return deliveries

    async def ack(self, deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            await delivery.message.ack()
        await self._nc.flush()

    async def retry_later(self, deliveries: list[Delivery], delay: float) -> None:
        for delivery in deliveries:
            await delivery.message.nak(delay=delay)
        await self._nc.flush()

    async def drop(self, deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            await delivery.message.term()

    async def close(self) -> None:
        if self._nc is not None:
            try:
                await self._nc.close()
            except Exception:  # noqa: BLE001
                pass
            self._nc = None
