"""The send engine: the worker that takes a job from its queue, holds every rate limit
(``limiter``, ``throttle``), calls the gateway, retries and records the outcome."""
