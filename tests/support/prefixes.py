"""Topic prefixes that keep tests on shared servers apart (a prefix namespaces every Redis key)."""

import itertools
import uuid

_counter = itertools.count()


def unique_prefix() -> str:
    return f"t{next(_counter)}{uuid.uuid4().hex[:6]}."
