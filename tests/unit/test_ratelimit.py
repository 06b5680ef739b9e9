"""The sliding-window rate limit, in memory (the Redis one is exercised over HTTP)."""

from __future__ import annotations

import pytest

from api.errors import ApiError
from api.ratelimit import Limit, LocalRateLimiter, enforce

LIMIT = Limit("test", 3, 60)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_at_most_the_limit_in_any_window_and_refusals_are_not_counted() -> None:
    clock = Clock()
    limiter = LocalRateLimiter(clock)
    for step in (0, 10, 10):  # hits at 1000, 1010, 1020
        clock.now += step
        assert limiter.hit(LIMIT, "a") is None
    clock.now = 1059
    assert limiter.hit(LIMIT, "a") == pytest.approx(1.0)  # the first hit leaves in 1 s
    assert limiter.hit(LIMIT, "b") is None  # another key
    clock.now = 1060
    assert limiter.hit(LIMIT, "a") is None  # a refused hit did not extend the wait
    assert limiter.hit(LIMIT, "a") == pytest.approx(10.0)


def test_no_double_burst_across_a_window_edge() -> None:
    clock = Clock()
    limiter = LocalRateLimiter(clock)
    clock.now = 59.9
    assert [limiter.hit(LIMIT, "a") for _ in range(3)] == [None, None, None]
    clock.now = 60.1  # a fixed window would start over here
    assert limiter.hit(LIMIT, "a") is not None


def test_enforce_answers_429_with_whole_seconds_to_wait() -> None:
    clock = Clock()
    limiter = LocalRateLimiter(clock)
    for _ in range(3):
        enforce(limiter, LIMIT, "a")
    clock.now += 0.5
    with pytest.raises(ApiError) as refused:
        enforce(limiter, LIMIT, "a")
    assert refused.value.status == 429 and refused.value.code == "RATE_LIMITED"
    assert refused.value.headers == {"Retry-After": "60"}
