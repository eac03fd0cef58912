"""A user's readiness script, started at the same moment as `tilt up`: waits until every UIResource named on
the command line has condition Ready=True, reading the API through the official Python `kubernetes` client
and the kubeconfig context that tilt merges into $KUBECONFIG.

    python3 poller.py CONTEXT INTERVAL_S NAME...

It prints one JSON line of CLOCK_REALTIME nanosecond timestamps: `start` (the interpreter runs this file),
`imported` (the client library is loaded), `config` (the kubeconfig has the context), `first_list` (the first
LIST answered), `ready` (every named UIResource Ready), plus `polls` and `config_attempts`. It exits 1 with a
message on stderr if that has not happened within 30 s.
"""
import json
import sys
import time

start = time.time_ns()

from kubernetes import client, config  # noqa: E402 (the import's cost is part of what is measured)

imported = time.time_ns()
context, interval, names = sys.argv[1], float(sys.argv[2]), set(sys.argv[3:])
deadline = time.monotonic() + 30

config_attempts = 0
while True:
    config_attempts += 1
    try:
        config.load_kube_config(context=context)
        break
    except Exception as e:  # the file or the context is not there yet
        if time.monotonic() > deadline:
            sys.exit(f"poller: no kubeconfig context {context!r} within 30 s: {e}")
        time.sleep(interval)
configured = time.time_ns()

api = client.CustomObjectsApi()
polls = 0
first_list = None
while True:
    polls += 1
    try:
        items = api.list_cluster_custom_object("tilt.dev", "v1alpha1", "uiresources")["items"]
        if first_list is None:
            first_list = time.time_ns()
        ready = sum(
            1
            for u in items
            if u["metadata"]["name"] in names
            and any(c.get("type") == "Ready" and c.get("status") == "True" for c in (u.get("status") or {}).get("conditions") or [])
        )
        if ready == len(names):
            break
    except Exception as e:  # the server is not listening yet, or the objects are not there yet
        if time.monotonic() > deadline:
            sys.exit(f"poller: not every UIResource Ready within 30 s: {e}")
    if time.monotonic() > deadline:
        sys.exit("poller: not every UIResource Ready within 30 s")
    time.sleep(interval)

print(json.dumps({
    "start": start,
    "imported": imported,
    "config": configured,
    "first_list": first_list,
    "ready": time.time_ns(),
    "polls": polls,
    "config_attempts": config_attempts,
}), flush=True)
