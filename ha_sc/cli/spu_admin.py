"""``ha-sc spu list|register|unregister``: custom SPUs (the ``spu`` group holds them)."""

from __future__ import annotations

from collections.abc import Sequence

import click
from pydantic import ValidationError

from ha_sc.cli.output import echo_json, endpoints_option, output_option, render_table, run_admin
from ha_sc.model.codec import format_validation_error
from ha_sc.model.kinds import Spu
from ha_sc.model.spu import CustomSpuSpec, Endpoint
from ha_sc.protocol.api_wire import object_json, split_host_port

SPU_COLUMNS = ("ID", "NAME", "STATUS", "TYPE", "RACK", "PUBLIC", "PRIVATE")


def spus_table(spus: Sequence[Spu]) -> str:
    """Fluvio's SPU table, or its words for none."""
    if not spus:
        return "no spu"
    rows = [
        [
            str(spu.spec.id),
            spu.key,
            spu.status.resolution.value,
            spu.spec.spu_type.value,
            spu.spec.rack or "-",
            str(spu.spec.public_endpoint),
            str(spu.spec.private_endpoint),
        ]
        for spu in sorted(spus, key=lambda s: s.spec.id)
    ]
    return render_table(SPU_COLUMNS, rows)


def _endpoint(ctx: click.Context, param: click.Parameter, value: str) -> Endpoint:
    try:
        host, port = split_host_port(value)
        return Endpoint(host=host, port=port)
    except (ValueError, ValidationError) as exc:
        raise click.BadParameter(str(exc)) from None


@click.command("list")
@endpoints_option
@output_option
def spu_list(endpoints: tuple[str, ...], output: str) -> None:
    """List SPUs: id, name, status, type, rack and endpoints."""
    spus = run_admin(endpoints, lambda admin: admin.list_spus())
    if output == "json":
        echo_json([object_json(spu) for spu in spus])
    else:
        click.echo(spus_table(spus))


@click.command("register")
@click.argument("name", required=False)
@click.option("-i", "--id", "spu_id", type=int, required=True, help="SPU id.")
@click.option(
    "-p",
    "--public-server",
    required=True,
    metavar="HOST:PORT",
    callback=_endpoint,
    help="Where producers and consumers reach the SPU.",
)
@click.option(
    "-v",
    "--private-server",
    required=True,
    metavar="HOST:PORT",
    callback=_endpoint,
    help="Where other SPUs reach it for replication.",
)
@click.option("-r", "--rack", default=None, help="Rack name, for rack-aware replica placement.")
@endpoints_option
@output_option
def spu_register(
    name: str | None,
    spu_id: int,
    public_server: Endpoint,
    private_server: Endpoint,
    rack: str | None,
    endpoints: tuple[str, ...],
    output: str,
) -> None:
    """Register a custom SPU, named NAME (default custom-spu-<id>)."""
    try:
        spec = CustomSpuSpec(
            id=spu_id, public_endpoint=public_server, private_endpoint=private_server, rack=rack
        )
    except ValidationError as exc:
        raise click.BadParameter(format_validation_error(exc)) from None
    spu = run_admin(endpoints, lambda admin: admin.register_spu(spec, name=name))
    if output == "json":
        echo_json(object_json(spu))
    else:
        click.echo(f'custom spu "{spu.key}" (id {spu.spec.id}) registered')


@click.command("unregister")
@click.argument("name")
@endpoints_option
def spu_unregister(name: str, endpoints: tuple[str, ...]) -> None:
    """Unregister the custom SPU NAME."""
    run_admin(endpoints, lambda admin: admin.unregister_spu(name))
    click.echo(f'custom spu "{name}" unregistered')
