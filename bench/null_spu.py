"""A stand-in SPU that acknowledges every produce at once and keeps nothing: the
ceiling the client alone can reach over the real wire and a real socket.

    .venv/bin/python -m bench.null_spu PORT

Answers each produce with the next offsets (counting the batches' records), checks
nothing but the framing; prints ``ready`` once listening.
"""

from __future__ import annotations

import asyncio
import sys

from ha_sc.protocol.data import ProduceRequest, ProduceResponse, encode_frame, request_decoder
from ha_sc.protocol.record_batch import iter_batches


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    decoder = request_decoder()
    leo: dict[tuple[str, int], int] = {}
    while data := await reader.read(1 << 20):
        for header, body in decoder.feed(data):
            if not isinstance(header, ProduceRequest):
                continue
            key = (header.topic, header.partition)
            base = leo.get(key, 0)
            count = sum(raw.header.record_count for raw in iter_batches(body, verify=False))
            leo[key] = base + count
            writer.writelines(encode_frame(ProduceResponse(id=header.id, base_offset=base)))
    writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(serve, "127.0.0.1", port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
