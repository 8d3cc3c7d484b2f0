"""Durable subscriptions of the memory bus, kept in the event journal.

Layout: one journal stream per durable name, ``durable.<name>``, in the journal
namespace ``orrery.bus``; the consumer position (the highest version up to which every
event was acknowledged) is the key ``durable.<name>`` of the ``orrery.bus`` store. One
stream per name, rather than one shared stream with positions, keeps each durable
subscription's backlog and retention independent, and makes "where is it" one version
number.

Publish: the feed is a route target. A publish matching the pattern hands the event to
the feed, whose writer appends everything handed over meanwhile in one transaction
(group commit); the publisher's ``await publish(...)`` returns once that append has
committed, so a returned publish is never lost. Delivery: a feeder task reads the stream
from the position on (the events just written come from memory, older ones from the
journal) and offers each event to one member subscription (round robin over members with
room). Acknowledgements advance the position over the contiguous acknowledged prefix; it
is saved in the background, one save in flight at a time, and on close. After a crash,
everything after the saved position is delivered again: at-least-once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from orrery.sdk import Event

from ._durable import DurableFeed, FeedTasks
from ._subscription import MemorySubscription
from ._target import Target, Waiter

if TYPE_CHECKING:
    from orrery.kernel.storage import EventJournal, KeyValueStore, Storage

__all__ = ["BUS_NAMESPACE", "JournalFeed", "journal_feeds"]

log = logging.getLogger("orrery.bus")

#: Journal namespace and store of the bus's durable subscriptions.
BUS_NAMESPACE = "orrery.bus"
#: Events read from the journal per round trip while catching up.
_PAGE = 500
#: Acknowledged events are deleted from the stream in steps of at least this many (and
#: all of them on close): a durable subscription's disk use is its backlog, not its past.
_TRIM_STEP = 1000


class _Commit:
    """What a publisher awaits: the append of the batch its event went into."""

    __slots__ = ("future",)

    def __init__(self, future: asyncio.Future[None]) -> None:
        self.future = future

    async def put_waiting(self, event: Event) -> None:
        # Shielded: a publisher that gives up must not cancel the batch for the others.
        await asyncio.shield(self.future)


class JournalFeed(Target):
    """One durable name on a `MemoryBus`: its stream, position and member subscriptions."""

    __slots__ = (
        "_acked",
        "_batch",
        "_closed",
        "_commit",
        "_feeder",
        "_idle_waiters",
        "_journal",
        "_members",
        "_name",
        "_next",
        "_on_empty",
        "_pattern",
        "_position",
        "_recent",
        "_retry",
        "_saved",
        "_saving",
        "_store",
        "_stream",
        "_tasks",
        "_trimmed",
        "_turn",
        "_versions",
        "_wakeup",
        "_writing",
    )

    def __init__(
        self,
        name: str,
        pattern: str,
        journal: EventJournal,
        store: KeyValueStore,
        *,
        tasks: FeedTasks,
        on_empty: Callable[[DurableFeed], None],
        seq: int = 0,
    ) -> None:
        super().__init__(seq=seq)
        self._tasks = tasks
        self._on_empty = on_empty
        self._name = name
        self._pattern = pattern
        self._journal = journal
        self._store = store
        self._stream = f"durable.{name}"
        self._members: list[MemorySubscription] = []
        self._turn = 0
        self._closed = False
        # Publish side: events waiting for the writer, and the future of their batch.
        self._batch: list[Event] = []
        self._commit: asyncio.Future[None] | None = None
        self._writing = False
        # Delivery side: appended events still in memory, as (version, event).
        self._recent: deque[tuple[int, Event]] = deque()
        # Offered to a member that left unfinished: offered again before anything new.
        self._retry: deque[tuple[int, Event]] = deque()
        self._next = 0  # the next version to offer; 0 until the position is loaded
        self._versions: dict[str, int] = {}  # event id -> version, offered not acked
        self._acked: set[int] = set()
        self._position = 0  # every version <= this is acknowledged
        self._saved = 0
        self._saving = False
        self._trimmed = 0
        self._wakeup: asyncio.Future[None] | None = None
        self._feeder: asyncio.Task[None] | None = None
        self._idle_waiters: list[asyncio.Future[None]] = []

    @property
    def name(self) -> str:
        """The durable name."""
        return self._name

    @property
    def pattern(self) -> str:
        """The pattern the durable subscription matches."""
        return self._pattern

    @property
    def target(self) -> Target:
        """Publishes on the pattern are routed to the feed itself (it appends them)."""
        return self

    @property
    def members(self) -> tuple[MemorySubscription, ...]:
        """The subscriptions sharing this durable name."""
        return tuple(self._members)

    def __repr__(self) -> str:
        return (
            f"<JournalFeed {self._name!r} on {self._pattern!r} position={self._position} "
            f"members={len(self._members)}>"
        )

    # -- members -------------------------------------------------------------------------

    def join(self, member: MemorySubscription) -> None:
        """Offer events to ``member`` too; the first member starts the feeder."""
        if member not in self._members:
            self._members.append(member)
        if self._feeder is None and not self._closed:
            self._feeder = self._tasks.start_feeder(self._feed(), f"durable {self._name}")
        self._wake()

    def leave(self, member: MemorySubscription) -> None:
        """Stop offering events to ``member``; its unacknowledged events come back."""
        if member in self._members:
            self._members.remove(member)
        if not self._members:
            # Deferred: a hot swap detaches the old member before it attaches the new one
            # in the same step, and the feed must survive that.
            asyncio.get_running_loop().call_soon(self._on_empty, self)

    # -- publish side --------------------------------------------------------------------

    def offer(self, event: Event) -> Waiter | None:
        if self._closed:
            return None
        if self._commit is None:
            self._commit = asyncio.get_running_loop().create_future()
        self._batch.append(event)
        commit = _Commit(self._commit)
        if not self._writing:
            self._writing = True
            self._tasks.spawn(self._write(), f"orrery.bus append {self._stream}")
        return commit

    async def _write(self) -> None:
        """Append what publishers handed over, batch after batch, until none is left."""
        try:
            while self._batch:
                batch, commit = self._batch, self._commit
                self._batch, self._commit = [], None
                assert commit is not None
                try:
                    version = await self._journal.append(self._stream, batch)
                except BaseException as e:
                    if not commit.done():
                        commit.set_exception(e)
                        commit.exception()  # retrieved by whoever awaits; never "unretrieved"
                    if isinstance(e, Exception):
                        log.error("durable %r: cannot append to the journal: %s", self._name, e)
                        continue
                    raise
                first = version - len(batch) + 1
                recent = self._recent
                for offset, event in enumerate(batch):
                    recent.append((first + offset, event))
                # Memory is a shortcut, not the record: beyond a bound, the feeder reads
                # the journal instead.
                limit = self._tasks.queue_size * 4
                while len(recent) > limit:
                    recent.popleft()
                if not commit.done():
                    commit.set_result(None)
                self._wake()
        finally:
            self._writing = False

    # -- delivery side -------------------------------------------------------------------

    async def _load(self) -> None:
        saved = await self._store.get(self._stream, 0)
        self._position = self._saved = saved if isinstance(saved, int) else 0
        self._next = self._position + 1

    async def _feed(self) -> None:
        """Offer events in version order, from the position on, until closed."""
        await self._load()
        while not self._closed:
            if self._retry:
                await self._offer_to_member(*self._retry.popleft())
                continue
            recent = self._recent
            while recent and recent[0][0] < self._next:
                recent.popleft()
            if recent and recent[0][0] == self._next:
                await self._hand_out(*recent.popleft())
                continue
            page = await self._read_page()
            if page:
                for version, event in page:
                    await self._hand_out(version, event)
                continue
            wakeup = self._wakeup = asyncio.get_running_loop().create_future()
            self._release_idle()
            await wakeup

    def idle_waiter(self) -> asyncio.Future[None] | None:
        """A future resolved once everything appended so far was offered to a member
        (None if that is so now, or the feed has no members to offer to)."""
        if self.is_idle() or not self._members or self._closed:
            return None
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._idle_waiters.append(waiter)
        return waiter

    def is_idle(self) -> bool:
        """Nothing waiting to be appended and the feeder waiting for new events."""
        return (
            not self._batch
            and not self._writing
            and self._wakeup is not None
            and not self._wakeup.done()
        )

    def _release_idle(self) -> None:
        waiters, self._idle_waiters = self._idle_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _read_page(self) -> list[tuple[int, Event]]:
        page: list[tuple[int, Event]] = []
        async for stored in self._journal.read(self._stream, from_version=self._next):
            page.append((stored.version, stored.to_event()))
            if len(page) >= _PAGE:
                break
        return page

    async def _hand_out(self, version: int, event: Event) -> None:
        self._next = version + 1
        await self._offer_to_member(version, event)

    async def _offer_to_member(self, version: int, event: Event) -> None:
        while not self._members and not self._closed:
            wakeup = self._wakeup = asyncio.get_running_loop().create_future()
            await wakeup
        if self._closed:
            return
        self._versions[event.id] = version
        member = self._pick()
        full = member.offer(event)
        if full is not None:
            await full.put_waiting(event)

    def _pick(self) -> MemorySubscription:
        members = self._members
        count = len(members)
        start = self._turn % count
        for step in range(count):
            member = members[(start + step) % count]
            if member.has_room():
                self._turn = start + step + 1
                return member
        self._turn = start + 1
        return members[start]

    def _wake(self) -> None:
        wakeup = self._wakeup
        if wakeup is not None:
            self._wakeup = None
            if not wakeup.done():
                wakeup.set_result(None)

    # -- acknowledgement -----------------------------------------------------------------

    def acknowledge(self, event: Event) -> None:
        """Mark ``event`` done; advance and (in the background) save the position."""
        version = self._versions.pop(event.id, None)
        if version is None or version <= self._position:
            return
        acked = self._acked
        acked.add(version)
        position = self._position
        while position + 1 in acked:
            position += 1
            acked.discard(position)
        self._position = position
        if position > self._saved and not self._saving and not self._closed:
            self._saving = True
            self._tasks.spawn(self._save(), f"orrery.bus position {self._stream}")

    def requeue(self, events: Sequence[Event]) -> None:
        """Offer ``events`` (left unfinished by a member) again, before anything new.

        Without members left the feed closes instead, and they come back from the
        journal after the saved position when the durable name is subscribed again.
        """
        for event in events:
            version = self._versions.pop(event.id, None)
            if version is not None and version > self._position:
                self._retry.append((version, event))
        if self._retry:
            self._wake()

    async def _save(self) -> None:
        try:
            while self._position > self._saved:
                position = self._position
                await self._store.put(self._stream, position)
                self._saved = position
                if position - self._trimmed >= _TRIM_STEP:
                    await self._trim()
        except Exception as e:
            log.error("durable %r: cannot save its position: %s", self._name, e)
        finally:
            self._saving = False

    async def _trim(self) -> None:
        """Delete what the saved position says is done: nobody reads before it again."""
        saved = self._saved
        await self._journal.truncate(self._stream, saved + 1)
        self._trimmed = saved

    async def close(self) -> None:
        """Stop the feeder and save the position (events after it come back later)."""
        if self._closed:
            return
        self._closed = True
        self._wake()
        self._release_idle()
        feeder, self._feeder = self._feeder, None
        if feeder is not None:
            feeder.cancel()
            await asyncio.gather(feeder, return_exceptions=True)
        try:
            if self._position > self._saved:
                await self._store.put(self._stream, self._position)
                self._saved = self._position
            if self._saved > self._trimmed:
                await self._trim()
        except Exception as e:
            log.error("durable %r: cannot save its position: %s", self._name, e)

    def stats(self) -> dict[str, Any]:
        """Position, unacknowledged count and members, for status pages and tests."""
        return {
            "name": self._name,
            "pattern": self._pattern,
            "position": self._position,
            "in_flight": len(self._versions),
            "members": len(self._members),
        }


def journal_feeds(
    storage: Storage, tasks: FeedTasks, seq: Callable[[], int]
) -> Callable[[str, str, Callable[[DurableFeed], None]], DurableFeed]:
    """A `FeedFactory` of journal feeds in ``storage``'s ``orrery.bus`` namespace."""

    def factory(name: str, pattern: str, on_empty: Callable[[DurableFeed], None]) -> DurableFeed:
        return JournalFeed(
            name,
            pattern,
            storage.journal(BUS_NAMESPACE),
            storage.store(BUS_NAMESPACE),
            tasks=tasks,
            on_empty=on_empty,
            seq=seq(),
        )

    return factory
