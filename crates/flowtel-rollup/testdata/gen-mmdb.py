#!/usr/bin/env python3
"""Generate the small MaxMind-format (.mmdb) fixtures the rollup's GeoIP/ASN tests read.

Run from this directory after `pip install mmdb-writer==0.2.7` (which pulls in netaddr):

    python3 gen-mmdb.py

The networks are arbitrary test data, not real geolocation: tests assert exactly these
mappings. Both databases are IPv6 trees with IPv4 mapped under ::/96, like MaxMind's own.
"""

from mmdb_writer import MMDBWriter, MmdbU32
from netaddr import IPSet

COUNTRIES = [
    (["1.1.1.0/24"], "AU"),
    (["8.8.8.0/24", "2001:4860::/32"], "US"),
    (["81.2.69.0/24"], "GB"),
    (["2a02:ec0::/29"], "SE"),
]

ASNS = [
    (["1.1.1.0/24"], 13335, "Cloudflare test"),
    (["8.8.8.0/24", "2001:4860::/32"], 15169, "Google test"),
]


def main() -> None:
    country = MMDBWriter(
        ip_version=6,
        ipv4_compatible=True,
        database_type="flowtel-test-Country",
        languages=["en"],
        description="flowtel test fixture: country",
    )
    for nets, iso in COUNTRIES:
        country.insert_network(IPSet(nets), {"country": {"iso_code": iso}})
    country.to_db_file("country-test.mmdb")

    asn = MMDBWriter(
        ip_version=6,
        ipv4_compatible=True,
        database_type="flowtel-test-ASN",
        languages=["en"],
        description="flowtel test fixture: ASN",
    )
    for nets, number, org in ASNS:
        asn.insert_network(
            IPSet(nets),
            {
                "autonomous_system_number": MmdbU32(number),
                "autonomous_system_organization": org,
            },
        )
    asn.to_db_file("asn-test.mmdb")


if __name__ == "__main__":
    main()
