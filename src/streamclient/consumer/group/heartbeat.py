"""The timers of group membership (Java's ``Heartbeat``): when the next heartbeat is due,
when the coordinator must be presumed gone, and when the application stopped polling.

All times are milliseconds from one monotonic clock the caller reads; nothing here reads
a clock itself.
"""

from __future__ import annotations

__all__ = ["HeartbeatTimers"]


class HeartbeatTimers:
    """Three deadlines:

    - next heartbeat: ``heartbeat_interval_ms`` after the last one was sent (or
      ``retry_backoff_ms`` after a failed one);
    - session: no successful heartbeat answer for ``session_timeout_ms`` means the
      coordinator has surely expired us, so it is presumed unreachable and rediscovered;
    - poll: no application poll for ``max_poll_interval_ms`` means it is stuck in its
      processing; the member leaves the group so that its partitions move on.
    """

    def __init__(
        self,
        *,
        session_timeout_ms: int,
        heartbeat_interval_ms: int,
        max_poll_interval_ms: int,
        retry_backoff_ms: int,
        now_ms: int,
    ) -> None:
        self.session_timeout_ms = session_timeout_ms
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.max_poll_interval_ms = max_poll_interval_ms
        self.retry_backoff_ms = retry_backoff_ms
        self.last_send_ms = now_ms
        self.last_receive_ms = now_ms
        self.last_poll_ms = now_ms
        self.next_heartbeat_ms = now_ms + heartbeat_interval_ms
        self.in_flight = False

    def sent(self, now_ms: int) -> None:
        self.last_send_ms = now_ms
        self.in_flight = True
        self.next_heartbeat_ms = now_ms + self.heartbeat_interval_ms

    def received(self, now_ms: int) -> None:
        self.last_receive_ms = now_ms
        self.in_flight = False

    def failed(self, now_ms: int) -> None:
        """A heartbeat got no usable answer: try again after the retry backoff."""
        self.in_flight = False
        self.next_heartbeat_ms = now_ms + self.retry_backoff_ms

    def polled(self, now_ms: int) -> None:
        self.last_poll_ms = now_ms

    def reset_timeouts(self, now_ms: int) -> None:
        """A fresh start (after joining): the session and poll clocks restart now."""
        self.last_receive_ms = now_ms
        self.last_poll_ms = now_ms
        self.next_heartbeat_ms = now_ms + self.heartbeat_interval_ms
        self.in_flight = False

    def heartbeat_due(self, now_ms: int) -> bool:
        return not self.in_flight and now_ms >= self.next_heartbeat_ms

    def time_to_next_heartbeat(self, now_ms: int) -> int:
        return max(0, self.next_heartbeat_ms - now_ms)

    def session_expired(self, now_ms: int) -> bool:
        return now_ms - self.last_receive_ms > self.session_timeout_ms

    def poll_expired(self, now_ms: int) -> bool:
        return now_ms - self.last_poll_ms > self.max_poll_interval_ms

    def next_deadline(self, now_ms: int) -> int:
        """The earliest time any of the three timers needs attention."""
        return min(
            self.next_heartbeat_ms,
            self.last_receive_ms + self.session_timeout_ms + 1,
            self.last_poll_ms + self.max_poll_interval_ms + 1,
        )
