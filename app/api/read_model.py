"""The read path's in-process model: stores in memory, stored badges cached per sku.

Badges are computed by the reconcilers, not per request, so the public reads need
not ask PostgreSQL every time. This model, owned by the app (made in the lifespan,
injected by DI), holds:

* the stores (few) with their freshness, and per location asked about the stores in
  range, nearest first (exact great-circle distance, ``app.domain.geo``);
* per sku (an LRU of ``max_skus`` skus), whether the sku is known and the stored
  badge of each (store, sku) pair a read needed, loaded in one query on a miss.

A reconciler that publishes new positions sends ``NOTIFY availability_changed``
with the changed store ids (empty: everything) in the same transaction; a dedicated
listener connection drops the affected entries. Nothing is served that was not
confirmed current within ``max_age`` seconds (``badge_cache_max_age``): an entry is
current as of its load, or as of the listener's latest round trip (every
``max_age / 4``; PostgreSQL delivers pending notifications before answering it), so
while the listener is healthy entries need not expire, and when it hangs they do. When the
listener is down (connection lost, not yet reconnected) nothing is cached: every
read goes to the database until it listens again, and it starts from an empty cache.
The staleness gate is not cached: the API applies it to every read with its clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import asyncpg
import msgspec
import structlog

from app.db import availability as availability_db
from app.domain.geo import distance_km
from app.domain.reassess import CalibrationMap

log = structlog.get_logger(__name__)

CHANNEL = "availability_changed"
DEFAULT_MAX_SKUS = 10_000
MAX_LOCATIONS = 4_096
DEFAULT_MAX_ANSWER_BYTES = 64 * 1024 * 1024  # encoded answers kept, oldest dropped first
PAIR_GENS_PRUNE = 10_000  # pair generations kept before those no load needs are dropped
_RECONNECT_WAIT = (0.05, 5.0)  # first and longest wait between listener reconnects


class StoreInfo(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    store_id: str
    name: str
    lat: float
    lon: float
    postal_key: str | None
    newest_at: datetime | None


class InRange(msgspec.Struct, frozen=True, kw_only=True):
    """A store within the radius of a location, with its distance (km, unrounded).
    Its freshness is the current ``Stores.by_id[store_id].newest_at``."""

    distance: float
    store_id: str
    ref_json: bytes  # the encoded StoreRef, made once per location and store


class Located(msgspec.Struct, frozen=True, kw_only=True):
    centre: tuple[float, float]
    stores: list[InRange]  # nearest first, ties by store_id


# The cached objects below are many (a row per (store, sku) read) and hold no
# reference cycles, so they are not tracked by the cyclic garbage collector
# (``gc=False``): otherwise its full passes over them pause the process for a large
# fraction of a second whenever the cache turns over.


class Row(msgspec.Struct, gc=False):
    """One (store, sku) stored badge as cached; ``views`` is the API's to fill (the
    encoded badge fields per question asked, reused while the staleness gate leaves
    the badge be; its keys must be untracked by the garbage collector too)."""

    stored: availability_db.StoredBadge | None
    gen: int
    loaded_at: float
    views: dict[Any, bytes] = {}


class Answer(msgspec.Struct, gc=False):
    """An encoded answer the API made from this model (its bytes are the API's
    business; ``parts`` must hold no reference cycle), with what it rests on: the
    model's generation when it started, the stores it read (their ``StoreInfo`` as
    then, and the stores' geometry version), its sku and whether it was known, and the
    oldest load time of the stores and rows it read (bounded by ``max_age`` like them)."""

    gen: int
    loaded_at: float
    parts: Any
    size: int
    sku: str = ""
    stores_version: int = -1  # the Stores it was made from (current while it is the model's)
    infos: tuple[StoreInfo, ...] = ()
    geometry_version: int = -1
    known: bool = True
    unrecorded: tuple[float, ...] = ()  # the stores' unrecorded shelf it used (no-record rows)


class _SkuEntry(msgspec.Struct, gc=False):
    known: bool = False
    known_gen: int = -1
    known_at: float = float("-inf")
    rows: dict[str, Row] = {}


class SkuBadges(msgspec.Struct, frozen=True, kw_only=True):
    known: bool
    rows: dict[str, Row]  # the store ids asked for (a missing row: no position)


class Stores:
    """The stores as loaded at ``gen``/``loaded_at``, and the locations asked about."""

    def __init__(
        self,
        stores: list[StoreInfo],
        gen: int,
        loaded_at: float,
        unrecorded: tuple[float, ...] = (),
    ) -> None:
        self.by_id = {s.store_id: s for s in stores}
        # The engine's unrecorded shelf as of the load: a pair with no position's confidence.
        self.unrecorded = unrecorded
        self.gen = gen
        self.loaded_at = loaded_at
        self.geometry = tuple((s.store_id, s.name, s.lat, s.lon, s.postal_key) for s in stores)
        self.geometry_version = 0  # the same while ``geometry`` is (set by the model)
        self.locations: dict[tuple[Any, ...], Located | None] = {}
        self.superseded_at: float | None = None  # the first notification after the load
        self.version = next(_STORES_VERSIONS)  # told apart without holding on to them

    def near(
        self, *, lat: float | None, lon: float | None, postal_code: str | None, radius_km: float
    ) -> Located | None:
        """Stores within ``radius_km`` of (lat, lon), or of the centroid of the stores
        with ``postal_code`` (spaces and case ignored); None for an unknown postal code."""
        key = (
            ("p", postal_key(postal_code), radius_km)
            if postal_code is not None
            else ("l", lat, lon, radius_km)
        )
        try:
            return self.locations[key]
        except KeyError:
            pass
        found = self._near(lat, lon, postal_code, radius_km)
        if len(self.locations) >= MAX_LOCATIONS:
            self.locations.clear()
        self.locations[key] = found
        return found

    def _near(
        self, lat: float | None, lon: float | None, postal_code: str | None, radius_km: float
    ) -> Located | None:
        if postal_code is not None:
            want = postal_key(postal_code)
            members = [s for s in self.by_id.values() if s.postal_key == want]
            if not members:
                return None
            lat = sum(s.lat for s in members) / len(members)
            lon = sum(s.lon for s in members) / len(members)
        assert lat is not None and lon is not None
        in_range = sorted(
            (
                (d, s)
                for s in self.by_id.values()
                if (d := distance_km(lat, lon, s.lat, s.lon)) <= radius_km
            ),
            key=lambda ds: (ds[0], ds[1].store_id),
        )
        return Located(
            centre=(lat, lon),
            stores=[
                InRange(
                    distance=d,
                    store_id=s.store_id,
                    ref_json=_ENCODER.encode(
                        {"store_id": s.store_id, "name": s.name, "distance_km": round(d, 3)}
                    ),
                )
                for d, s in in_range
            ],
        )


_ENCODER = msgspec.json.Encoder()
_STORES_VERSIONS = itertools.count()


def _log_failed_reload(task: asyncio.Task[Stores]) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.warning("read_model.stores_reload_failed", error=repr(exc))


def postal_key(code: str | None) -> str | None:
    return None if code is None else code.replace(" ", "").upper()


class ReadModel:
    """Stores and stored badges for the public reads, bounded by ``max_age`` seconds
    and invalidated by ``NOTIFY availability_changed`` (see the module docstring)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        max_age: float,
        max_skus: int = DEFAULT_MAX_SKUS,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
        monotonic: Callable[[], float] = time.monotonic,
        confirm_every: float | None = None,
    ) -> None:
        if max_age < 0 or max_skus < 1:
            raise ValueError("max_age must be >= 0 and max_skus >= 1")
        self._pool = pool
        self.max_age = max_age
        self.max_skus = max_skus
        self.max_answer_bytes = max_answer_bytes
        self._answers: dict[Any, Answer] = {}
        self._calibrations: dict[int, CalibrationMap] = {}  # immutable once stored
        self._answer_bytes = 0
        self._mono = monotonic
        # How often the listener makes a round trip to confirm no notification was missed.
        self.confirm_every = (
            confirm_every if confirm_every is not None else max(0.05, min(max_age / 4, 30.0))
        )
        self._confirmed_at = float("-inf")
        self._gen = 0  # bumped by every notification and every (re)connect
        self._all_gen = 0  # the last notification or reconnect that touched everything
        self._store_gen: dict[str, int] = {}
        # The last notification naming each (store, sku) pair. Rows and answers a pair
        # notification concerns are dropped at once; the generations are kept only for the
        # loads in flight that started before them (pruned beyond PAIR_GENS_PRUNE).
        self._pair_gen: dict[tuple[str, str], int] = {}
        self._writers: list[int] = []  # the generations the loads in flight started at
        self._answer_keys: dict[str, set[Any]] = {}  # sku -> keys of its kept answers
        self._refreshes: set[asyncio.Task[None]] = set()
        self.refreshed_rows = 0  # rows reloaded in the background after a pair notification
        self._skus: OrderedDict[str, _SkuEntry] = OrderedDict()
        self._stores: Stores | None = None
        self._stores_lock = asyncio.Lock()
        self._stores_task: asyncio.Task[Stores] | None = None
        self._listening = False
        self._task: asyncio.Task[None] | None = None
        self.listening_changed = asyncio.Condition()
        self.reconnects = 0
        self.notifications = 0
        self.confirmations = 0
        self.listener_pid: int | None = None
        self.db_loads = 0  # sku loads that went to the database (for tests and metrics)
        self.revalidations = 0  # answers kept across notifications that did not concern them
        self._geometry_version = 0

    # -- invalidation --------------------------------------------------------

    @property
    def listening(self) -> bool:
        return self._listening

    @property
    def caching(self) -> bool:
        """Serving from memory: listening for changes, with a positive ``max_age``."""
        return self._listening and self.max_age > 0

    def invalidate(
        self, store_ids: Iterable[str] | None = None, pairs: Iterable[tuple[str, str]] = ()
    ) -> list[tuple[str, str]]:
        """Drop what depends on ``store_ids`` (every sku there) or on ``pairs`` (those
        (store, sku) badges only); neither: everything. Returns the named pairs whose
        rows were held (for a background reload)."""
        self._gen += 1
        if self._stores is not None and self._stores.superseded_at is None:
            self._stores.superseded_at = self._mono()
        ids = [s for s in (store_ids or ()) if s]
        named = [(s, k) for s, k in pairs if s and k]
        if not ids and not named:
            self._all_gen = self._gen
            self._skus.clear()
            self._pair_gen.clear()
            self._answers.clear()
            self._answer_keys.clear()
            self._answer_bytes = 0
            return []
        for s in ids:
            self._store_gen[s] = self._gen
        held: list[tuple[str, str]] = []
        for store, sku in named:
            self._pair_gen[(store, sku)] = self._gen
            entry = self._skus.get(sku)
            if entry is not None and entry.rows.pop(store, None) is not None:
                held.append((store, sku))
            for key in self._answer_keys.pop(sku, ()):
                dropped = self._answers.pop(key, None)
                if dropped is not None:
                    self._answer_bytes -= dropped.size
        if len(self._pair_gen) > PAIR_GENS_PRUNE:
            self._prune_pair_gens()
        return held

    def _prune_pair_gens(self) -> None:
        """Keep the pair generations a load in flight may still need: those after the
        oldest in flight began (what was cached before them was dropped at once)."""
        if not self._writers:
            self._pair_gen.clear()
            return
        oldest = min(self._writers)
        self._pair_gen = {p: g for p, g in self._pair_gen.items() if g > oldest}

    def _superseded(self, store: str, sku: str, gen: int) -> bool:
        """Whether a row of (store, sku) read at ``gen`` was notified about since."""
        return (
            self._all_gen > gen
            or self._store_gen.get(store, -1) > gen
            or self._pair_gen.get((store, sku), -1) > gen
        )

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        """Payload (``app.db.availability.notify_badges_changed``): comma-separated
        ``store/sku`` (that pair changed) or ``store`` (anything there) items; empty:
        everything."""
        self.notifications += 1
        text = payload if isinstance(payload, str) else ""
        items = [i for i in text.split(",") if i]
        stores = [i for i in items if "/" not in i]
        pairs = [(s, k) for s, _, k in (i.partition("/") for i in items if "/" in i)]
        held = self.invalidate(stores, pairs)
        if held and self.caching:
            # Reload the named pairs this process held, in one query, so reads after
            # it find them current instead of each going to the database.
            task = asyncio.get_running_loop().create_task(self._refresh(held))
            self._refreshes.add(task)
            task.add_done_callback(self._refreshes.discard)

    async def _refresh(self, held: list[tuple[str, str]]) -> None:
        gen, at = self._gen, self._mono()
        self._writers.append(gen)
        try:
            async with self._pool.acquire() as conn:
                found = await availability_db.stored_pairs(conn, held, self._calibrations)
            if not self.caching:
                return
            for store, sku in held:
                entry = self._skus.get(sku)
                row = None if entry is None else entry.rows.get(store)
                if (
                    entry is not None
                    and (row is None or row.gen < gen)
                    and not self._superseded(store, sku, gen)
                ):
                    entry.rows[store] = Row(found.get((store, sku)), gen, at)
                    self.refreshed_rows += 1
        except Exception as exc:  # the reads load what they need themselves
            log.warning("read_model.refresh_failed", error=repr(exc))
        finally:
            self._writers.remove(gen)

    # -- stores --------------------------------------------------------------

    def _stores_fresh(self, stores: Stores | None) -> bool:
        return (
            stores is not None
            and self.caching
            and stores.gen == self._gen
            and self._mono() - max(stores.loaded_at, self._confirmed_at) <= self.max_age
        )

    def _stores_usable(self, stores: Stores) -> bool:
        """Superseded by a notification less than ``max_age`` ago, and within ``max_age``
        of its load or of the listener's latest round trip."""
        now = self._mono()
        return (
            self.caching
            and stores.superseded_at is not None
            and now - stores.superseded_at <= self.max_age
            and now - max(stores.loaded_at, self._confirmed_at) <= self.max_age
        )

    async def stores(self) -> Stores:
        """The stores and their freshness: cached while nothing was notified. After a
        notification the stores as loaded before it are served, for at most ``max_age``,
        while one reload runs in the background (the reads do not queue behind it). Their
        freshness can only be older than the truth, so the staleness gate can only be
        stricter; answers made from them are made again once the reload lands (an
        answer is current only with the stores object it was made from)."""
        current = self._stores
        if current is not None:
            if self._stores_fresh(current):
                return current
            if self._stores_usable(current):
                if self._stores_task is None or self._stores_task.done():
                    self._stores_task = asyncio.get_running_loop().create_task(self._load_stores())
                    self._stores_task.add_done_callback(_log_failed_reload)
                return current
        return await self._load_stores()

    async def settled(self) -> None:
        """Until the background reload of the stores, if one runs, has landed (tests)."""
        task = self._stores_task
        if task is not None:
            await asyncio.shield(task)

    async def _load_stores(self) -> Stores:
        async with self._stores_lock:
            current = self._stores
            if current is not None and self._stores_fresh(current):
                return current
            gen, at = self._gen, self._mono()
            async with self._pool.acquire() as conn:
                rows, unrecorded = await availability_db.all_stores(conn)
            loaded = Stores(
                [
                    StoreInfo(
                        store_id=r.store_id,
                        name=r.name,
                        lat=r.lat,
                        lon=r.lon,
                        postal_key=postal_key(r.postal_code),
                        newest_at=r.newest_at,
                    )
                    for r in rows
                ],
                gen,
                at,
                unrecorded,
            )
            if current is not None and current.geometry == loaded.geometry:
                # only freshness changed: the locations still hold
                loaded.locations = current.locations
                loaded.geometry_version = current.geometry_version
            else:
                self._geometry_version += 1
                loaded.geometry_version = self._geometry_version
            if self.caching:
                self._stores = loaded
            return loaded

    # -- badges --------------------------------------------------------------

    def _row_fresh(self, row: Row, store_id: str, sku: str, now: float) -> bool:
        return (
            row.gen >= self._all_gen
            and row.gen >= self._store_gen.get(store_id, 0)
            and row.gen >= self._pair_gen.get((store_id, sku), 0)
            and now - max(row.loaded_at, self._confirmed_at) <= self.max_age
        )

    async def badges(self, skus: list[str], store_ids: list[str]) -> dict[str, SkuBadges]:
        """Per sku (distinct, in order): whether it is known and its stored badge at each
        of ``store_ids``. Whatever is not cached (or too old) is loaded in one query."""
        now = self._mono()
        out: dict[str, SkuBadges] = {}
        missing: list[str] = []
        if self.caching:
            for sku in skus:
                entry = self._skus.get(sku)
                if entry is None:
                    missing.append(sku)
                    continue
                if (
                    entry.known_gen < self._all_gen
                    or (not entry.known and entry.known_gen < self._gen)
                    or now - max(entry.known_at, self._confirmed_at) > self.max_age
                ):
                    missing.append(sku)
                    continue
                rows: dict[str, Row] = {}
                for s in store_ids:
                    row = entry.rows.get(s)
                    if row is None or not self._row_fresh(row, s, sku, now):
                        missing.append(sku)
                        break
                    rows[s] = row
                else:
                    self._skus.move_to_end(sku)
                    out[sku] = SkuBadges(known=entry.known, rows=rows)
        else:
            missing = list(skus)
        if missing:
            loaded = await self._load(missing, store_ids)
            out.update(loaded)
            return {sku: out[sku] for sku in skus}
        return out

    async def _load(self, skus: list[str], store_ids: list[str]) -> dict[str, SkuBadges]:
        gen, at = self._gen, self._mono()
        self.db_loads += 1
        self._writers.append(gen)
        try:
            async with self._pool.acquire() as conn:
                found = await availability_db.stored_badges(
                    conn, skus, store_ids, self._calibrations
                )
            return self._keep_loaded(found, skus, store_ids, gen, at)
        finally:
            self._writers.remove(gen)

    def _keep_loaded(
        self,
        found: dict[str, tuple[bool, dict[str, availability_db.StoredBadge]]],
        skus: list[str],
        store_ids: list[str],
        gen: int,
        at: float,
    ) -> dict[str, SkuBadges]:
        caching = self.caching
        out: dict[str, SkuBadges] = {}
        for sku in skus:
            known, stored = found[sku]
            rows = {s: Row(stored.get(s), gen, at) for s in store_ids}
            out[sku] = SkuBadges(known=known, rows=rows)
            if not caching:
                continue
            entry = self._skus.get(sku)
            if entry is None:
                entry = self._skus[sku] = _SkuEntry()
            else:
                self._skus.move_to_end(sku)
            entry.known, entry.known_gen, entry.known_at = known, gen, at
            # not what a notification since the query began superseded (it was dropped)
            entry.rows.update(
                (s, row) for s, row in rows.items() if not self._superseded(s, sku, gen)
            )
        while len(self._skus) > self.max_skus:
            self._skus.popitem(last=False)
        return out

    # -- encoded answers -------------------------------------------------------

    @property
    def gen(self) -> int:
        """The generation now: take it before reading what an answer rests on."""
        return self._gen

    def answer(self, key: Any) -> Answer | None:
        """The answer kept under ``key`` if nothing at all was notified since it was
        made and it is within ``max_age`` of its loads (or of the listener's latest
        confirmation); None otherwise (then try :meth:`revalidated`). The hot path:
        a dictionary lookup, two comparisons and a clock read."""
        found = self._answers.get(key)
        if (
            found is None
            or found.gen != self._gen
            or self._stores is None
            or found.stores_version != self._stores.version
            or not self._listening
            or self._mono() - max(found.loaded_at, self._confirmed_at) > self.max_age
        ):
            return None
        return found

    async def revalidated(self, key: Any) -> Answer | None:
        """The answer kept under ``key`` when notifications came since it was made but
        none of them concerns it: none for everything, none for a store it read or a
        pair of its sku, no change to those stores' rows (freshness, name), to the stores'
        geometry or to the chain's unrecorded shelf (a pair without a record's confidence), and
        its sku was known (a sku not known may become known at any store). It is then
        current again (re-stamped, so the next read takes :meth:`answer`'s path)."""
        found = self._answers.get(key)
        if (
            found is None
            or not found.known
            or found.gen < self._all_gen
            or not self._listening
            or self._mono() - max(found.loaded_at, self._confirmed_at) > self.max_age
        ):
            return None
        if (
            found.gen == self._gen
            and self._stores is not None
            and found.stores_version == self._stores.version
        ):
            return found
        gen = self._gen
        stores = await self.stores()
        if (
            stores.geometry_version != found.geometry_version
            or found.gen < self._all_gen
            or stores.unrecorded != found.unrecorded
        ):
            return None
        for info in found.infos:
            if (
                self._store_gen.get(info.store_id, -1) > found.gen
                or self._pair_gen.get((info.store_id, found.sku), -1) > found.gen
                or stores.by_id.get(info.store_id) != info
            ):
                return None
        found.gen, found.stores_version = gen, stores.version
        self.revalidations += 1
        return found

    def keep_answer(self, key: Any, answer: Answer) -> None:
        """Keep ``answer`` (while caching; the oldest go first beyond the byte bound)."""
        if not self.caching or answer.gen != self._gen:
            return
        old = self._answers.pop(key, None)
        if old is not None:
            self._answer_bytes -= old.size
        self._answers[key] = answer
        self._answer_keys.setdefault(answer.sku, set()).add(key)
        self._answer_bytes += answer.size
        while self._answer_bytes > self.max_answer_bytes and self._answers:
            first = next(iter(self._answers))
            dropped = self._answers.pop(first)
            self._answer_bytes -= dropped.size
            keys = self._answer_keys.get(dropped.sku)
            if keys is not None:
                keys.discard(first)
                if not keys:
                    del self._answer_keys[dropped.sku]

    # -- the listener ----------------------------------------------------------

    def clear(self) -> None:
        """Forget everything cached."""
        self.invalidate(None)  # drops the skus and the answers too
        self._stores = None
        self._confirmed_at = float("-inf")

    async def _set_listening(self, value: bool) -> None:
        self.clear()  # before and after a gap in notifications: start again
        self._listening = value
        if value:
            self.reconnects += 1
        async with self.listening_changed:
            self.listening_changed.notify_all()

    async def wait_listening(self, value: bool = True) -> None:
        """Until the listener is (or is not) listening."""
        async with self.listening_changed:
            await self.listening_changed.wait_for(lambda: self._listening is value)

    async def start(self) -> None:
        """Start the listener; returns once the first LISTEN is in place (or failed)."""
        if self._task is None:
            self._task = asyncio.create_task(self._listen_forever(), name="read-model-listener")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wait_listening(True), timeout=10)

    async def stop(self) -> None:
        for refresh in list(self._refreshes):
            refresh.cancel()
        if self._stores_task is not None:
            self._stores_task.cancel()
            with contextlib.suppress(BaseException):
                await self._stores_task
            self._stores_task = None
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._listening = False
        self.clear()

    async def _confirm(self, conn: Any) -> None:
        """A round trip on the listening connection. PostgreSQL sends a listener the
        notifications of every transaction committed before a query (before its reply),
        so once it is answered, whatever is cached and not invalidated was current when
        it was sent: cached entries are as fresh as that. No answer within the interval
        (a silent network drop) counts as a lost connection."""
        sent = self._mono()
        await asyncio.wait_for(conn.execute("SELECT 1"), timeout=max(self.confirm_every, 1.0))
        await asyncio.sleep(0)  # let the notification callbacks queued before the reply run
        self._confirmed_at = max(self._confirmed_at, sent)
        self.confirmations += 1

    async def _listen_forever(self) -> None:
        wait = _RECONNECT_WAIT[0]
        while True:
            conn: Any = None
            try:
                conn = await self._pool.acquire()
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                started = self._mono()
                await conn.add_listener(CHANNEL, self._on_notify)
                self.listener_pid = conn.get_server_pid()
                await self._set_listening(True)
                self._confirmed_at = started
                wait = _RECONNECT_WAIT[0]
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), timeout=self.confirm_every)
                    if not lost.is_set():
                        await self._confirm(conn)
                log.warning("read_model.listener_lost")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("read_model.listener_failed", error=repr(exc))
            finally:
                if self._listening:
                    await self._set_listening(False)
                if conn is not None:
                    with contextlib.suppress(Exception):
                        if not conn.is_closed():
                            await conn.remove_listener(CHANNEL, self._on_notify)
                    with contextlib.suppress(Exception):
                        await self._pool.release(conn)
            await asyncio.sleep(wait)
            wait = min(wait * 2, _RECONNECT_WAIT[1])
