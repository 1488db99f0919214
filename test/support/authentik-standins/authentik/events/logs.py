from contextlib import contextmanager
from dataclasses import dataclass, field

_capturing = []


@dataclass
class LogEvent:
    event: str
    log_level: str
    logger: str
    attributes: dict = field(default_factory=dict)


def emit(event):
    if _capturing:
        _capturing[-1].append(event)


@contextmanager
def capture_logs(log_default_output=True):
    # As the real one: the list is filled when the block ends.
    logs = []
    _capturing.append([])
    try:
        yield logs
        logs.extend(_capturing[-1])
    finally:
        _capturing.pop()
