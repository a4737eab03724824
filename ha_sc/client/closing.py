"""``ClosedOnExit``: what makes a client object usable with ``async with``."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class ClosedOnExit:
    """``async with obj:`` gives ``obj`` and awaits ``obj.close()`` on the way out."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        raise NotImplementedError
