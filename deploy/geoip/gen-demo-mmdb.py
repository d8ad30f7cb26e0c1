#!/usr/bin/env python3
"""Generate the demo's GeoIP databases from its address plan (demo-networks.csv).

Run from this directory after `pip install mmdb-writer==0.2.7` (which pulls in netaddr):

    python3 gen-demo-mmdb.py

Writes flowtel-demo-country.mmdb (`country.iso_code`, like GeoLite2-Country) and
flowtel-demo-asn.mmdb (`autonomous_system_number` and `autonomous_system_organization`, like
GeoLite2-ASN). Both are IPv6 trees with IPv4 mapped under ::/96, like MaxMind's own. The data
is the project's own (the registration of the networks the demo uses), not geolocation data:
`flowtel demo` embeds these files, and the compose demo mounts them.
"""

import csv
import os

import mmdb_writer
from mmdb_writer import MMDBWriter, MmdbU32
from netaddr import IPSet

# Reproducible output: the build time in the metadata is SOURCE_DATE_EPOCH (default
# 2026-01-01T00:00:00Z), not the time of the run.
BUILD_EPOCH = int(os.environ.get("SOURCE_DATE_EPOCH", "1767225600"))
mmdb_writer.time.time = lambda: BUILD_EPOCH


def rows():
    with open("demo-networks.csv", newline="") as f:
        lines = [line for line in f if not line.startswith("#")]
    return list(csv.DictReader(lines))


def main() -> None:
    country = MMDBWriter(
        ip_version=6,
        ipv4_compatible=True,
        database_type="flowtel-demo-Country",
        languages=["en"],
        description="flowtel demo address plan: country",
    )
    asn = MMDBWriter(
        ip_version=6,
        ipv4_compatible=True,
        database_type="flowtel-demo-ASN",
        languages=["en"],
        description="flowtel demo address plan: ASN",
    )
    for row in rows():
        nets = IPSet([row["network"]])
        country.insert_network(nets, {"country": {"iso_code": row["country"]}})
        asn.insert_network(
            nets,
            {
                "autonomous_system_number": MmdbU32(int(row["asn"])),
                "autonomous_system_organization": row["organisation"],
            },
        )
    country.to_db_file("flowtel-demo-country.mmdb")
    asn.to_db_file("flowtel-demo-asn.mmdb")


if __name__ == "__main__":
    main()
