"""Running a service's transaction: bounded retries of deadlocks and serialization failures,
and every other database refusal to serve (lock timeout, lost connection) as `busy`."""

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction

from config.errors import Busy

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: SQLSTATEs worth trying again at once: serialization_failure, deadlock_detected.
RETRYABLE = {"40001", "40P01"}
ATTEMPTS = 3

BUSY_DETAIL = (
    "The database could not complete the change now (a lock wait timed out, a conflict "
    "or a lost connection); nothing was written. Try again."
)


def _sqlstate(error: DatabaseError) -> str | None:
    cause = error.__cause__
    return getattr(cause, "sqlstate", None) or getattr(getattr(cause, "diag", None), "sqlstate", None)


def read_one_snapshot() -> None:
    """Makes the transaction just begun read every statement from one snapshot (REPEATABLE
    READ, READ ONLY): a preview built from several reads then describes one moment, not
    counters from before a concurrent change and the nodes from after it. Call it first thing
    in the outermost `atomic()` block; elsewhere (a savepoint, SQLite) it does nothing."""
    if connection.vendor == "postgresql" and len(connection.atomic_blocks) == 1 and not connection.savepoint_ids:
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")


def atomic_with_retry(work: Callable[[], T], *, attempts: int = ATTEMPTS) -> T:
    """Runs `work` in `transaction.atomic()`. A deadlock or serialization failure is retried
    (with jitter) up to `attempts` times when this is the outermost transaction; a lock timeout,
    a lost connection or a conflict that outlives the retries becomes `Busy` (503 + Retry-After).
    Whatever fails, the transaction is rolled back: nothing is half-written."""
    outermost = not connection.in_atomic_block
    for attempt in range(1, attempts + 1):
        try:
            with transaction.atomic():
                return work()
        except (OperationalError, InterfaceError) as error:
            state = _sqlstate(error)
            if state in RETRYABLE and outermost and attempt < attempts:
                logger.info(
                    "retrying after %s (sqlstate %s), attempt %d of %d", type(error).__name__, state, attempt, attempts
                )
                time.sleep(random.uniform(0.005, 0.05) * attempt)
                continue
            logger.warning("database busy: %s (sqlstate %s)", error, state)
            raise Busy(BUSY_DETAIL, retry_after=1) from error
    raise AssertionError("unreachable")
