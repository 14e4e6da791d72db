#!/usr/bin/python3
"""Pushes with the Python client (Debian's python3-prometheus-client), for
compat_test.go. Run with /usr/bin/python3 so that the Debian package is found.

usage: pyclient.py GATEWAY

GATEWAY is host:port of a Pushgateway (here: a socat bridge to push-gateway's
socket). The script reads one ACTION a line from stdin and answers each with
one line on stdout, "ok" or "error: <why>", so that the test checks the
gateway between actions without starting Python again. ACTION is one of:

  push        push_to_gateway (PUT): counter, gauge, histogram, summary
  pushadd     pushadd_to_gateway (POST): one more gauge, py_extra
  push-extra  push_to_gateway (PUT) of py_extra alone
  conflict    push_to_gateway of py_extra as a summary to another job;
              the gateway must refuse it (the client raises, exit status 1)
  delete      delete_from_gateway of both groups

The grouping key has a value with a slash (sent as base64) and an empty
value (sent as @base64/=).
"""

import sys

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary
from prometheus_client.exposition import (
    delete_from_gateway,
    push_to_gateway,
    pushadd_to_gateway,
)

JOB = "python"
GROUPING = {"instance": "host/1", "zone": ""}
TIMEOUT = 5


def full_registry():
    reg = CollectorRegistry()
    jobs = Counter("py_jobs", "Jobs processed.", ["queue"], registry=reg)
    jobs.labels("a").inc(3)
    Gauge("py_temperature_celsius", "Temperature.", registry=reg).set(21.5)
    lat = Histogram("py_latency_seconds", "Latency.", buckets=(0.1, 1), registry=reg)
    for v in (0.05, 0.5, 5):
        lat.observe(v)
    size = Summary("py_size_bytes", "Size.", registry=reg)
    size.observe(100)
    size.observe(300)
    return reg


def extra_registry():
    reg = CollectorRegistry()
    Gauge("py_extra", "Extra.", registry=reg).set(7)
    return reg


def run(gateway, action):
    if action == "push":
        push_to_gateway(gateway, JOB, full_registry(), GROUPING, TIMEOUT)
    elif action == "pushadd":
        pushadd_to_gateway(gateway, JOB, extra_registry(), GROUPING, TIMEOUT)
    elif action == "push-extra":
        push_to_gateway(gateway, JOB, extra_registry(), GROUPING, TIMEOUT)
    elif action == "conflict":
        reg = CollectorRegistry()
        Summary("py_extra", "Extra.", registry=reg).observe(1)
        push_to_gateway(gateway, JOB + "-other", reg, None, TIMEOUT)
    elif action == "delete":
        delete_from_gateway(gateway, JOB, GROUPING, TIMEOUT)
        delete_from_gateway(gateway, JOB + "-other", None, TIMEOUT)
    else:
        raise ValueError("unknown action %r" % action)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    for line in sys.stdin:
        action = line.strip()
        if not action:
            continue
        try:
            run(sys.argv[1], action)
            print("ok", flush=True)
        except (OSError, ValueError) as e:  # the client raises on a status >= 400
            print("error: %s" % e, flush=True)


if __name__ == "__main__":
    main()
