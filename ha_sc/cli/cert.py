"""``ha-sc cert``: a CA for a cluster, and certificates signed by it."""

from __future__ import annotations

from pathlib import Path

import click

from ha_sc.cluster.cert_authority import CA_CERT, CertificateError, issue, make_ca


@click.group()
def cert() -> None:
    """Certificates for TLS on the SC and SPU ports (a CA of your own; keys mode 0600)."""


@cert.command("ca")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help=f"Directory for {CA_CERT} and ca.key (replaced if there).",
)
def cert_ca(out: Path) -> None:
    """Make a CA: give its ca.crt to every member (--tls-ca) and client; keep ca.key."""
    pair = make_ca(out)
    click.echo(f"CA certificate {pair.cert}, key {pair.key}")


@cert.command("issue")
@click.option(
    "--ca",
    "ca_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    required=True,
    help="Directory of the CA (ca.crt, ca.key) that signs.",
)
@click.option(
    "--name",
    required=True,
    help="Common name and file name: sc-1, or spu-<id> for an SPU (its id, for its peers).",
)
@click.option(
    "--host",
    "hosts",
    multiple=True,
    required=True,
    help="Address or DNS name the member is dialled at (repeat for each).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for <name>.crt and <name>.key.  [default: the CA's directory]",
)
def cert_issue(ca_dir: Path, name: str, hosts: tuple[str, ...], out: Path | None) -> None:
    """Issue a key and certificate for one member, for serving and for dialling."""
    try:
        pair = issue(ca_dir, out or ca_dir, name, hosts)
    except CertificateError as unusable:
        raise click.ClickException(str(unusable)) from None
    click.echo(f"certificate {pair.cert}, key {pair.key}")
