"""django.db.transaction.atomic over the stand-in object store: a block that raises leaves
the objects as they were before it (nested blocks are savepoints)."""
from contextlib import contextmanager

import fake_state


@contextmanager
def atomic():
    snapshot = fake_state.load_objects()
    try:
        yield
    except BaseException:
        fake_state.store_objects(snapshot)
        raise
