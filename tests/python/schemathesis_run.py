"""Runs schemathesis over every group version the server's OpenAPI v3 index lists (so over every kind),
through the context `tilt` of $KUBECONFIG, and exits non-zero on any server error, any response that does
not match the documented status codes, content types or schemas, or any operation schemathesis cannot test
from the document.

Every operation of every document gets the examples and fuzzing phases; the coverage phase (boundary and
near-miss values, thousands of requests per operation) runs on Cmd (spec, status subresource) and ConfigMap
(no spec, no status), which go through every code path the other kinds share, to keep the run to minutes.

Usage: schemathesis_run.py WORKDIR [MAX_EXAMPLES]
Extra schemathesis arguments (e.g. `--include-path-regex cmds` while investigating) come from $SCHEMATHESIS_EXTRA.
"""
import base64
import json
import os
import pathlib
import ssl
import subprocess
import sys
import urllib.request

import yaml

CHECKS = ",".join([
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
])

# A watch answers with a stream that ends only at its timeout, which no fuzzer reads as one response:
# watches are tested by the Rust, kube-rs and Python client tests instead.
CONFIG = """
[parameters]
"query.watch" = false
"""


def context(kubeconfig, name):
    config = yaml.safe_load(pathlib.Path(kubeconfig).read_text())
    ctx = next(c["context"] for c in config["contexts"] if c["name"] == name)
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == ctx["cluster"])
    user = next(u["user"] for u in config["users"] if u["name"] == ctx["user"])
    return cluster["server"], base64.b64decode(cluster["certificate-authority-data"]), user["token"]


def main():
    work = pathlib.Path(sys.argv[1])
    max_examples = sys.argv[2] if len(sys.argv) > 2 else "10"
    server, ca, token = context(os.environ["KUBECONFIG"], "tilt")
    ca_file = work / "ca.pem"
    ca_file.write_bytes(ca)
    config_file = work / "schemathesis.toml"
    config_file.write_text(CONFIG)
    tls = ssl.create_default_context(cafile=str(ca_file))

    def get(path):
        req = urllib.request.Request(server + path, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, context=tls) as resp:
            return resp.read()

    index = json.loads(get("/openapi/v3"))
    docs = {}
    for key, entry in sorted(index["paths"].items()):
        docs[key] = work / (key.replace("/", "_") + ".json")
        docs[key].write_bytes(get(entry["serverRelativeURL"]))
    passes = [(key, "examples,fuzzing", []) for key in docs]
    passes.append(("apis/tilt.dev/v1alpha1", "coverage", ["--include-path-regex", "/(cmds|configmaps)(/|$)"]))
    failed = []
    for key, phases, extra in passes:
        doc = docs[key]
        cmd = [
            sys.executable, "-m", "schemathesis.cli", "--config-file", str(config_file), "run", str(doc),
            "--url", server,
            "-H", f"Authorization: Bearer {token}",
            "--tls-verify", str(ca_file),
            "--checks", CHECKS,
            "--max-examples", max_examples,
            "--phases", phases,
            "--seed", "1",
            "--workers", "1",
            "--request-timeout", "10",
            "--no-color",
            *extra,
            *os.environ.get("SCHEMATHESIS_EXTRA", "").split(),
        ]
        print(f"== {key} ({phases})", flush=True)
        result = subprocess.run(cmd)
        if result.returncode != 0:
            failed.append(f"{key} ({phases})")
    if failed:
        print(f"schemathesis failed for: {', '.join(failed)}")
        sys.exit(1)
    print("schemathesis: ok")


if __name__ == "__main__":
    main()
