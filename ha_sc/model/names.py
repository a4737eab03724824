"""Name rules for object keys."""

import re

MAX_RESOURCE_NAME_LEN = 63

_ALLOWED = re.compile(r"[a-z0-9-]+")


def validate_resource_name(name: str, *, what: str = "name") -> str:
    """Check a DNS-1123 label (Fluvio's resource-name rule) and return it.

    Lowercase letters, digits and '-', starting and ending with a letter or digit,
    at most 63 characters.
    """
    if not name:
        raise ValueError(f"{what} must not be empty")
    if len(name) > MAX_RESOURCE_NAME_LEN:
        raise ValueError(
            f"{what} {name!r} is {len(name)} characters long; the limit is {MAX_RESOURCE_NAME_LEN}"
        )
    if not _ALLOWED.fullmatch(name):
        raise ValueError(f"{what} {name!r} may contain only lowercase letters, digits and '-'")
    if name[0] == "-" or name[-1] == "-":
        raise ValueError(f"{what} {name!r} must start and end with a letter or digit")
    return name


def validate_spu_name(name: str) -> str:
    """Check an SPU key: non-empty, lowercase letters, digits and '-'."""
    if not name:
        raise ValueError("spu name must not be empty")
    if not _ALLOWED.fullmatch(name):
        raise ValueError(f"spu name {name!r} may contain only lowercase letters, digits and '-'")
    return name
