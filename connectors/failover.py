"""Several base URLs of one provider, and the order in which a call tries them.

    in_order     every call starts on the first URL; the next ones serve only when it fails
    round_robin  calls start on each URL in turn (spreading the load); a failure moves to the next

A call's attempts (connectors/retry.py) walk its order: attempt n goes to order[n % len(order)],
so a transient failure on one URL is retried on the next one at once, within the exchange
deadline; only after every URL failed does the retry policy back off before starting over.
"""

from __future__ import annotations

from registry.connector_settings import Failover


class Upstreams:
    """The base URLs of a connector (without trailing slashes) and its failover policy."""

    def __init__(self, urls: tuple[str, ...], policy: Failover) -> None:
        if not urls:
            raise ValueError("a connector needs at least one base URL")
        self.urls = urls
        self.policy = policy
        self._next = 0  # round robin: where the next call starts

    def __len__(self) -> int:
        return len(self.urls)

    def order(self) -> tuple[int, ...]:
        """The indexes of the URLs, in the order one call tries them."""
        count = len(self.urls)
        if self.policy is Failover.IN_ORDER or count == 1:
            return tuple(range(count))
        start = self._next
        self._next = (start + 1) % count
        return tuple((start + i) % count for i in range(count))
