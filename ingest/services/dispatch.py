"""The sender's event loop: many attempts in flight, no receiver able to slow another.

Each claimed group (one subscription's oldest due alerts) is one task that sends its alerts in
order. Attempts in flight are capped in all (`max_in_flight`) and per receiver origin
(`per_origin`); an origin whose circuit is open gets no attempts (its groups are given back
unattempted), and a half-open one gets a single probe group. Outcomes are written in batches
(every FLUSH_SECONDS or FLUSH_ITEMS), so a fast receiver costs one database write per batch,
not per alert. The loop claims again as soon as a worker rings (`Wakeup`), a group finishes,
or LOOK_SECONDS passed; it closes digest windows every DIGEST_SECONDS (once per period across
all senders when given `Sweeps`).

Stopping: no new claims; attempts in flight are cancelled at once and recorded as failed
attempts (counted, retried per the schedule), alerts not yet started are given back.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from ingest.alert.policy import Attempt, Circuit
from ingest.alert.signature import signed_headers
from ingest.log import get_logger
from ingest.models import utcnow
from ingest.services.delivery import DeliveryService, Group, Send
from ingest.services.digests import cut_digests
from ingest.services.sweeps import Sweeps
from ingest.store.outbox import AttemptOutcome, ReceiverState

log = get_logger(__name__)

LOOK_SECONDS = 1.0  # longest wait between two claims (retries come due on their own)
FLUSH_SECONDS = 0.02
FLUSH_ITEMS = 200
DIGEST_SECONDS = 5.0
MAX_CLAIM = 100  # subscriptions per claim
MAX_BACKOFF = 30.0  # longest pause after database failures


class Waiter(Protocol):
    """The sender's bell (`ingest.alert.wakeup`): whether it rang within `timeout` seconds."""

    async def wait(self, timeout: float) -> bool: ...


class Poster(Protocol):
    """One webhook attempt (`ingest.alert.sender.WebhookSender`), bounded by its deadline."""

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Attempt: ...


class Dispatcher:
    """Runs groups of attempts concurrently; one per sender process."""

    def __init__(self, service: DeliveryService, sender: Poster, waiter: Waiter, *,
                 max_in_flight: int, per_origin: int, sweeps: Sweeps | None = None) -> None:  # fmt: skip
        self.service = service
        self.sweeps = sweeps  # set: digests are cut once per DIGEST_SECONDS across all senders
        self.sender = sender
        self.waiter = waiter
        self.max_in_flight = max_in_flight
        self.origin_slots: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(per_origin)
        )
        self.circuits: dict[str, Circuit] = {}
        self.probing: set[str] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.outcomes: list[AttemptOutcome] = []
        self.kick = asyncio.Event()
        self.stopping = False
        self.attempts = 0
        self.backoff = 0.0  # seconds of the current back-off after database failures
        self.resume_at = 0.0  # monotonic time before which the database is left alone

    async def run(self, stop: threading.Event, *, burst: bool = False,
                  beat: Callable[[], None] = lambda: None) -> int:  # fmt: skip
        """Deliver until `stop` is set (or, with `burst`, until nothing is due); the attempts made."""
        await self._load_circuits()
        listener = asyncio.create_task(self._listen())
        next_digest = 0.0
        try:
            while not stop.is_set():
                if time.monotonic() >= next_digest:
                    await self._cut_digests()
                    next_digest = time.monotonic() + DIGEST_SECONDS
                claimed = await self._claim()
                await self._flush()
                beat()
                if burst and not claimed and not self.tasks and not self.outcomes:
                    break
                await self._pause(stop, claimed)
        finally:
            listener.cancel()
            await self._stop()
        return self.attempts

    async def _cut_digests(self) -> None:
        try:
            store = self.service.store

            def cut() -> int:
                return len(cut_digests(store).digests)

            if self.sweeps is None:
                await asyncio.to_thread(cut)
            else:
                await asyncio.to_thread(self.sweeps.run, "digests", DIGEST_SECONDS, cut)
        except Exception as exc:  # database down: the next look tries again
            self._failed("digests_cut_failed", exc)

    def _failed(self, event: str, exc: Exception, **fields: object) -> None:
        """Log a database failure and back off (1 s doubling to 30 s) instead of hammering it."""
        self.backoff = min(max(1.0, self.backoff * 2), MAX_BACKOFF)
        self.resume_at = time.monotonic() + self.backoff
        log.error(event, error=f"{type(exc).__name__}: {exc}", retry_in=self.backoff, **fields)

    async def _pause(self, stop: threading.Event, claimed: int) -> None:
        """Until a ring, a finished group, a full claim's follow-up, or the next look; stop checked often."""
        if claimed and len(self.tasks) < self.max_in_flight and time.monotonic() >= self.resume_at:
            return
        wait = FLUSH_SECONDS if self.outcomes else LOOK_SECONDS
        deadline = max(time.monotonic() + wait, self.resume_at)
        while not stop.is_set() and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.kick.wait(), timeout=min(0.2, deadline - time.monotonic()))
            if self.kick.is_set():
                break
        self.kick.clear()

    async def _listen(self) -> None:
        while True:
            if await self.waiter.wait(LOOK_SECONDS):
                self.kick.set()

    async def _claim(self) -> int:
        free = min(self.max_in_flight - len(self.tasks), MAX_CLAIM)
        if free <= 0 or time.monotonic() < self.resume_at:
            return 0
        try:
            groups, settled = await asyncio.to_thread(self.service.claim, free)
        except Exception as exc:  # database down: try again after the back-off
            self._failed("alerts_claim_failed", exc)
            return 0
        self.backoff = 0.0
        self.outcomes += settled
        for group in groups:
            task = asyncio.create_task(self._send_group(group))
            self.tasks.add(task)
            task.add_done_callback(self._done)
        return len(groups)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self.kick.set()
        if not task.cancelled() and task.exception() is not None:  # a bug: its leases expire, it is retried
            log.error("alert_group_failed", error=repr(task.exception()))

    async def _send_group(self, group: Group) -> None:
        circuit = self.circuits.setdefault(group.origin, Circuit(group.origin))
        if not circuit.allows(utcnow()) or group.origin in self.probing:
            self.outcomes += [self.service.release(s) for s in group.sends]
            return
        probe = circuit.state == "half_open"
        if probe:
            self.probing.add(group.origin)
        try:
            for n, send in enumerate(group.sends):
                if self.stopping or not circuit.allows(utcnow()):
                    self.outcomes += [self.service.release(s) for s in group.sends[n:]]
                    return
                if not await self._attempt(send, group.origin, circuit):
                    self.outcomes += [self.service.release(s) for s in group.sends[n + 1 :]]
                    return
        finally:
            self.probing.discard(group.origin)

    async def _attempt(self, send: Send, origin: str, circuit: Circuit) -> bool:
        """One attempt and its outcome; False when the rest of the group must wait (gone, circuit)."""
        claim = send.claim
        try:
            async with self.origin_slots[origin]:
                headers = signed_headers(claim.secrets, claim.alert.id, int(time.time()), send.body)
                attempt = await self.sender.post(claim.subscription.webhook, send.body, headers)
        except asyncio.CancelledError:
            self.outcomes.append(self.service.abandoned(send))
            raise
        self.attempts += 1
        self.outcomes.append(self.service.outcome(send, attempt))
        changed = (
            circuit.success()
            if attempt.ok
            else circuit.failure(utcnow(), attempt.error or "", attempt.retry_after)
        )
        if changed:
            await self._save_circuit(circuit)
        return not attempt.gone and circuit.allows(utcnow())

    async def _flush(self) -> None:
        if time.monotonic() < self.resume_at and not self.stopping:
            return
        while self.outcomes:
            batch, self.outcomes = self.outcomes[:FLUSH_ITEMS], self.outcomes[FLUSH_ITEMS:]
            try:
                await asyncio.to_thread(self.service.finish, batch)
            except Exception as exc:  # database down: keep them; leases expire if it never returns
                self.outcomes = batch + self.outcomes
                log.error(
                    "alerts_record_failed", error=f"{type(exc).__name__}: {exc}", pending=len(self.outcomes)
                )
                return

    async def _load_circuits(self) -> None:
        try:
            states = await asyncio.to_thread(self.service.store.get_receivers)
        except Exception as exc:
            log.warning("receivers_load_failed", error=str(exc))
            return
        for s in states:
            self.circuits[s.origin] = Circuit(s.origin, state=s.state, failures=s.failures,
                                              open_until=s.open_until, last_error=s.last_error)  # fmt: skip

    async def _save_circuit(self, circuit: Circuit) -> None:
        state = ReceiverState(circuit.origin, circuit.state, circuit.failures, circuit.open_until,
                              circuit.last_error)  # fmt: skip
        if circuit.state == "open":
            log.warning("receiver_circuit_open", origin=circuit.origin, until=str(circuit.open_until),
                        error=circuit.last_error)  # fmt: skip
        else:
            log.info("receiver_circuit_closed", origin=circuit.origin)
        try:
            await asyncio.to_thread(self.service.store.save_receiver, replace(state, updated_at=utcnow()))
        except Exception as exc:
            log.warning("receiver_save_failed", origin=circuit.origin, error=str(exc))

    async def _stop(self) -> None:
        """Cancel what is in flight (recorded as abandoned attempts), then write what is pending."""
        self.stopping = True
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5.0):
                await self._flush()
