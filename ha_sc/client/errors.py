"""What the admin client raises."""

from __future__ import annotations


class ApiError(Exception):
    """The SC refused a request, or could not be reached.

    ``message`` is the server's own ``error`` text when there was a server to
    answer; ``field`` names the request field at fault, if the server named one.
    """

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.message!r}, field={self.field!r})"


class Unreachable(ApiError):
    """No SC replica answered (status 503, as the cluster is unavailable to the caller)."""

    def __init__(self, message: str) -> None:
        super().__init__(503, message)


class NoEndpoints(ValueError):
    """Nothing says where the cluster is."""
