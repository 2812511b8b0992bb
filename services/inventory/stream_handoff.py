"""A live `WatchStock` stream handed from the hub to the stream edge, which pushes its changes."""

from __future__ import annotations

from collections.abc import Callable

from posgate.errors import DomainError
from posgate.services.inventory.stream_subscriber import Subscriber


class StreamHandoff:
    """The edge's handle on one live stream: attach a sink, resume it, end the subscription.

    It implements `posgate.runtime.edge_calls.Handoff`.
    """

    __slots__ = ("_release", "_subscriber")

    def __init__(self, subscriber: Subscriber, release: Callable[[Subscriber], None]) -> None:
        """Hand over `subscriber`; `release` unregisters it from the hub (called once)."""
        self._subscriber = subscriber
        self._release: Callable[[Subscriber], None] | None = release

    def attach(self, push: Callable[[bytes], bool], end: Callable[[DomainError], None]) -> None:
        """Send every change through `push` (serialized once for all streams); `end` on failure."""
        self._subscriber.push_to(lambda item: push(item.serialized()), end)

    def resume(self) -> None:
        """The connection can take more: push what waited."""
        self._subscriber.pump()

    def detach(self) -> None:
        """End the subscription (the client left, or the stream ended); idempotent."""
        release, self._release = self._release, None
        if release is not None:
            release(self._subscriber)
