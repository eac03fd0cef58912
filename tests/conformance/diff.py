#!/usr/bin/env python3
"""Differential conformance: the same API scenarios against tilt's embedded apiserver and against kube-apiserver
serving the tilt.dev kinds as CRDs (`tilt crds`), compared response by response.

    diff.py OURS_KUBECONFIG OURS_CONTEXT THEIRS_KUBECONFIG THEIRS_CONTEXT [SCENARIO...]

Each scenario makes the same requests on both servers (object names carry a per-run prefix) and records what a
client can rely on: status codes, `Status` reason, message and details, bodies with server-chosen values (uid,
resourceVersion, timestamps) masked, and watch event sequences. A difference fails the run unless it is on the
list of intended differences below, with its reason. Prints one line per scenario and exits 1 on any
unexpected difference, printing both sides.
"""

import json
import os
import re
import sys
import time
import urllib.parse

import urllib3
from kubernetes import client as kclient
from kubernetes import config as kconfig

GROUP = "/apis/tilt.dev/v1alpha1"
# ImageMap: a kind with spec, status and printer columns that no controller of `tilt up` reconciles, so both
# servers hold only what the scenarios write.
KIND = "ImageMap"
COLL = GROUP + "/imagemaps"

# Normalized before comparing, because the servers differ there on purpose:
NORMALIZED = [
    "managedFields' metadata.finalizers: our field manager treats every list as atomic (f:finalizers: {}); "
    "kube-apiserver knows metadata.finalizers is a set and records each value (v:\"…\"), so two appliers of "
    "different finalizers merge there and replace each other here",
]

# Intended differences: (scenario, step) -> why. Where a step on this list differs, the difference is reported as
# intended and the rest of the scenario is still compared.
INTENDED = {
    ("validation", "not a media type it takes"):
        "same 415; kube-apiserver also lists application/vnd.kubernetes.protobuf, which tilt does not speak",
    ("validation", "not json"):
        "same 400 BadRequest; the JSON decoder's own wording differs (kube-apiserver's is Go's)",
    ("finalizers", "adding a finalizer while deleting"):
        "same 422 Invalid and cause; kube-apiserver lists the cause twice (two validation passes find it)",
    ("patches", "bad json"):
        "same 400 BadRequest; kube-apiserver says \"invalid JSON patch\" for any patch body it cannot parse, ours "
        "says where the JSON is broken",
    ("validation", "invalid name"):
        "tilt's apiserver, like Go Tilt's, takes any name that is a valid path segment, because Tiltfile resource "
        "names such as `bootstrap (secrets)` become object names; kube-apiserver wants an RFC 1123 subdomain",
    ("watch_expired", "watch from a compacted resourceVersion"):
        "our watch history reaches back to the server's start (up to its size limit), so resourceVersion 1 still "
        "replays; kube-apiserver's watch cache for a CRD starts after it, so there it is 410 Expired. Both answer "
        "410 Expired for a version older than what they hold",
    ("pagination", "bad continue token"):
        "same 400 BadRequest with the same start; kube-apiserver adds Go's JSON decoder error",
    ("selectors", "bad labelSelector"):
        "same 400 BadRequest \"unable to parse requirement: …\"; the parser's own wording differs",
    ("patches", "json patch test fails"):
        "same 422 Invalid; kube-apiserver says only \"the server rejected our request due to an error in our "
        "request\", ours names the failed operation and path",
}


class Server:
    def __init__(self, name, kubeconfig, context):
        self.name = name
        cfg = kclient.Configuration()
        kconfig.load_kube_config(config_file=kubeconfig, context=context, client_configuration=cfg)
        self.host = cfg.host.rstrip("/")
        self.headers = {}
        token = cfg.api_key.get("authorization") or cfg.api_key.get("BearerToken")
        if token:
            self.headers["Authorization"] = token if token.startswith("Bearer ") else "Bearer " + token
        self.http = urllib3.PoolManager(
            cert_reqs="CERT_REQUIRED" if cfg.verify_ssl else "CERT_NONE",
            ca_certs=cfg.ssl_ca_cert,
            cert_file=cfg.cert_file,
            key_file=cfg.key_file,
            assert_hostname=False if not cfg.verify_ssl else None,
        )

    def request(self, method, path, body=None, content_type="application/json", accept="application/json",
                query=None, stream=False, timeout=30):
        url = self.host + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        headers = dict(self.headers, Accept=accept)
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        return self.http.request(method, url, body=data, headers=headers, preload_content=not stream,
                                 timeout=urllib3.Timeout(connect=5, read=timeout), retries=False)


def parse(resp):
    try:
        return json.loads(resp.data)
    except ValueError:
        return {"<text>": resp.data.decode("utf-8", "replace")}


# A name generated from the generateName scenario's long prefix: the prefix cut to 58 characters + 5 random ones.
GENERATED = re.compile(r"(x{58})[a-z0-9]{5}")
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


class Run:
    """One scenario on one server: its requests and what was observed."""

    def __init__(self, server, prefix):
        self.s = server
        self.prefix = prefix
        self.seen = []
        self.rvs = {}  # resourceVersion -> its order of appearance, so "newer than" can still be compared

    def name(self, n):
        return f"{self.prefix}-{n}"

    def mask(self, v, key=""):
        if isinstance(v, dict):
            return {k: self.mask(x, k) for k, x in sorted(v.items()) if not (k == "time" and key == "")}
        if isinstance(v, list):
            return [self.mask(x, key) for x in v]
        if isinstance(v, str):
            if key == "uid":
                return "<uid>"
            if key in ("resourceVersion",) and v:
                return "<rv%d>" % self.rvs.setdefault(v, len(self.rvs))
            if key == "continue" and v:
                return "<continue>"
            if TIME.match(v):
                return "<time>"
            v = GENERATED.sub(r"\1<random>", v)
            return v.replace(self.prefix, "<p>")
        return v

    def managed(self, obj):
        """managedFields without their times, in a fixed order (both servers sort by operation, then time to
        the second, then manager: writes that straddle a second would order differently), and with
        metadata.finalizers as one field (see NORMALIZED)."""
        out = []
        for m in obj.get("metadata", {}).get("managedFields") or []:
            e = {k: m.get(k) for k in ("manager", "operation", "subresource", "fieldsType", "fieldsV1")
                 if m.get(k) is not None}
            meta = e.get("fieldsV1", {}).get("f:metadata", {})
            if "f:finalizers" in meta:
                meta["f:finalizers"] = "<owned>"
            out.append(e)
        return sorted(out, key=lambda e: (e.get("operation"), e.get("manager"), e.get("subresource", "")))

    def call(self, label, method, path, body=None, keep=None, **kw):
        """Records status code and (masked) body, or only the keys `keep` of it."""
        resp = self.s.request(method, path, body, **kw)
        data = parse(resp)
        if isinstance(data, dict) and data.get("kind") == "Status":
            rec = {k: data.get(k) for k in ("status", "reason", "message", "details", "code") if data.get(k)}
        elif keep is not None:
            rec = keep(data)
        else:
            rec = data
        if isinstance(rec, dict) and isinstance(rec.get("metadata"), dict) and "managedFields" in rec["metadata"]:
            rec = dict(rec, metadata=dict(rec["metadata"], managedFields=self.managed(rec)))
        self.seen.append({"step": label, "code": resp.status, "body": self.mask(rec)})
        return resp.status, data

    def note(self, label, value):
        self.seen.append({"step": label, "value": self.mask(value)})

    def watch(self, label, query, until, timeout=5):
        """Opens a watch and records its events (type, object name, masked object) until `until(events)` holds,
        the server closes the stream, or `timeout` passes."""
        query = dict(query, watch="true")
        resp = self.s.request("GET", COLL, query=query, stream=True, timeout=timeout)
        if resp.status != 200:
            self.seen.append({"step": label, "code": resp.status, "body": self.mask(parse_stream_error(resp))})
            return []
        events, buf, deadline = [], b"", time.time() + timeout
        try:
            while time.time() < deadline and not until(events):
                chunk = resp.read1(65536) if hasattr(resp, "read1") else resp.read(1)
                if not chunk:
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if line.strip():
                        events.append(json.loads(line))
        except (urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.ProtocolError):
            pass
        finally:
            resp.close()  # not back into the pool: the stream may still be open
        rec = []
        for e in events:
            obj = e.get("object", {})
            md = obj.get("metadata", {})
            if e["type"] == "BOOKMARK":
                rec.append({"type": "BOOKMARK", "annotations": md.get("annotations", {})})
            elif e["type"] == "ERROR":
                rec.append({"type": "ERROR", "object": {k: obj.get(k) for k in ("reason", "code", "status")}})
            else:
                rec.append({"type": e["type"], "name": md.get("name"), "spec": obj.get("spec"),
                            "status": obj.get("status"), "labels": md.get("labels")})
        self.seen.append({"step": label, "code": 200, "events": self.mask(rec)})
        return events


def parse_stream_error(resp):
    data = resp.read()
    resp.release_conn()
    try:
        d = json.loads(data)
        return {k: d.get(k) for k in ("status", "reason", "message", "details", "code") if d.get(k)}
    except ValueError:
        return {"<text>": data.decode("utf-8", "replace")}


def obj(name, selector="busybox", labels=None, finalizers=None, generate=False, **extra):
    md = {"generateName" if generate else "name": name}
    if labels:
        md["labels"] = labels
    if finalizers:
        md["finalizers"] = finalizers
    o = {"apiVersion": "tilt.dev/v1alpha1", "kind": KIND, "metadata": md, "spec": {"selector": selector}}
    o.update(extra)
    return o


def cleanup(r, *names):
    for n in names:
        r.s.request("PATCH", f"{COLL}/{r.name(n)}", {"metadata": {"finalizers": None}},
                    content_type="application/merge-patch+json")
        r.s.request("DELETE", f"{COLL}/{r.name(n)}")


# ---------------------------------------------------------------------------------------------------------------
# Scenarios: each gets a Run and makes the same calls on either server.

def crud(r):
    n = r.name("crud")
    r.call("create", "POST", COLL, obj(n))
    r.call("create again", "POST", COLL, obj(n))
    _, got = r.call("get", "GET", f"{COLL}/{n}")
    r.call("get missing", "GET", f"{COLL}/{n}-missing")
    got["spec"]["selector"] = "changed"
    _, updated = r.call("update", "PUT", f"{COLL}/{n}", got)
    r.note("update bumps generation", updated.get("metadata", {}).get("generation"))
    r.call("update with a stale resourceVersion", "PUT", f"{COLL}/{n}", got)
    no_rv = dict(updated, metadata={k: v for k, v in updated["metadata"].items() if k != "resourceVersion"})
    r.call("update without resourceVersion", "PUT", f"{COLL}/{n}", no_rv)
    r.call("update of another name", "PUT", f"{COLL}/{n}-other", updated)
    r.call("delete", "DELETE", f"{COLL}/{n}")
    r.call("delete missing", "DELETE", f"{COLL}/{n}")


def status_subresource(r):
    n = r.name("status")
    _, o = r.call("create with a status (dropped)", "POST", COLL,
                    obj(n, status={"image": "img:1", "bogus": "x"}))
    o["status"] = {"image": "img:2"}
    o["spec"]["selector"] = "changed"
    _, st = r.call("PUT status: only status changes", "PUT", f"{COLL}/{n}/status", o)
    r.note("generation after a status write", st.get("metadata", {}).get("generation"))
    st["status"] = {"image": "img:3"}
    r.call("PUT main resource: status ignored", "PUT", f"{COLL}/{n}", st)
    r.call("merge patch status", "PATCH", f"{COLL}/{n}/status", {"status": {"image": "img:4"}},
           content_type="application/merge-patch+json")
    r.call("get status", "GET", f"{COLL}/{n}/status")
    r.call("status of missing", "GET", f"{COLL}/{n}-missing/status")
    cleanup(r, "status")


def patches(r):
    n = r.name("patch")
    r.call("create", "POST", COLL, obj(n, labels={"a": "1"}))
    r.call("merge patch", "PATCH", f"{COLL}/{n}", {"metadata": {"labels": {"b": "2", "a": None}}},
           content_type="application/merge-patch+json")
    r.call("json patch", "PATCH", f"{COLL}/{n}",
           [{"op": "replace", "path": "/spec/selector", "value": "3"}, {"op": "replace", "path": "/metadata/labels/b",
                                                                  "value": "x"}],
           content_type="application/json-patch+json")
    r.call("json patch test fails", "PATCH", f"{COLL}/{n}",
           [{"op": "test", "path": "/spec/selector", "value": "nope"}], content_type="application/json-patch+json")
    r.call("strategic merge patch", "PATCH", f"{COLL}/{n}", {"metadata": {"labels": {"c": "3"}}},
           content_type="application/strategic-merge-patch+json")
    r.call("patch of missing", "PATCH", f"{COLL}/{n}-missing", {"metadata": {"labels": {"c": "3"}}},
           content_type="application/merge-patch+json")
    r.call("bad json", "PATCH", f"{COLL}/{n}", "{not json", content_type="application/merge-patch+json")
    cleanup(r, "patch")


def server_side_apply(r):
    n = r.name("ssa")
    first = obj(n, selector="a", labels={"owner": "one"})
    path = f"{COLL}/{n}"
    ssa = "application/apply-patch+yaml"
    r.call("apply creates", "PATCH", path, first, content_type=ssa, query={"fieldManager": "one"})
    r.call("apply again, no change", "PATCH", path, first, content_type=ssa, query={"fieldManager": "one"})
    other = obj(n, selector="b")
    r.call("conflict", "PATCH", path, other, content_type=ssa, query={"fieldManager": "two"})
    r.call("force", "PATCH", path, other, content_type=ssa, query={"fieldManager": "two", "force": "true"})
    r.call("no fieldManager", "PATCH", path, other, content_type=ssa)
    r.call("update by a third manager", "PATCH", path, {"metadata": {"labels": {"three": "x"}}},
           content_type="application/merge-patch+json", query={"fieldManager": "three"})
    r.call("one drops its label", "PATCH", path, obj(n, selector="b"), content_type=ssa,
           query={"fieldManager": "one", "force": "true"})
    cleanup(r, "ssa")


def watch_replay(r):
    n = r.name("watch")
    _, created = r.call("create", "POST", COLL, obj(n, labels={"w": r.prefix}), keep=lambda d: {})
    rv = created["metadata"]["resourceVersion"]
    r.call("label", "PATCH", f"{COLL}/{n}", {"metadata": {"labels": {"x": "1"}}},
           content_type="application/merge-patch+json", keep=lambda d: {})
    r.call("status", "PATCH", f"{COLL}/{n}/status", {"status": {"image": "img:4"}},
           content_type="application/merge-patch+json", keep=lambda d: {})
    r.call("delete", "DELETE", f"{COLL}/{n}", keep=lambda d: {})
    sel = {"labelSelector": f"w={r.prefix}"}
    r.watch("watch from the create's resourceVersion", dict(sel, resourceVersion=rv), lambda e: len(e) >= 3)
    r.watch("watch from 0 (nothing exists)", dict(sel, resourceVersion="0", timeoutSeconds="1"), lambda e: False,
            timeout=3)


def watch_expired(r):
    r.watch("watch from a compacted resourceVersion", {"resourceVersion": "1"}, lambda e: len(e) >= 1)


def initial_events(r):
    names = [r.name(f"init-{i}") for i in range(2)]
    for n in names:
        r.call("create " + n, "POST", COLL, obj(n, labels={"i": r.prefix}), keep=lambda d: {})
    q = {"labelSelector": f"i={r.prefix}", "sendInitialEvents": "true", "allowWatchBookmarks": "true",
         "resourceVersionMatch": "NotOlderThan"}
    r.watch("sendInitialEvents", q, lambda e: any(x["type"] == "BOOKMARK" for x in e))
    r.watch("sendInitialEvents without resourceVersionMatch",
            {k: v for k, v in q.items() if k != "resourceVersionMatch"}, lambda e: len(e) >= 1)
    r.watch("sendInitialEvents without bookmarks", dict(q, allowWatchBookmarks="false"), lambda e: len(e) >= 1)
    cleanup(r, "init-0", "init-1")


def pagination(r):
    for i in range(3):
        r.call(f"create {i}", "POST", COLL, obj(r.name(f"page-{i}"), labels={"pg": r.prefix}),
               keep=lambda d: {})
    items = lambda d: {"names": [i["metadata"]["name"] for i in d.get("items", [])],
                       "continue": d.get("metadata", {}).get("continue", ""),
                       "remaining": d.get("metadata", {}).get("remainingItemCount")}
    sel = {"labelSelector": f"pg={r.prefix}"}
    _, first = r.call("first page", "GET", COLL, query=dict(sel, limit="2"), keep=items)
    token = first.get("metadata", {}).get("continue", "")
    r.call("second page", "GET", COLL, query=dict(sel, limit="2", **{"continue": token}), keep=items)
    r.call("bad continue token", "GET", COLL, query=dict(sel, limit="2", **{"continue": "garbage"}))
    r.call("limit without selector", "GET", COLL, query={"limit": "1"},
           keep=lambda d: {"count": len(d.get("items", [])), "has_continue": bool(d["metadata"].get("continue"))})
    cleanup(r, "page-0", "page-1", "page-2")


def selectors(r):
    for n, labels in (("sel-a", {"env": "a", "s": r.prefix}), ("sel-b", {"env": "b", "s": r.prefix}),
                      ("sel-c", {"s": r.prefix})):
        r.call("create " + n, "POST", COLL, obj(r.name(n), labels=labels), keep=lambda d: {})
    names = lambda d: sorted(i["metadata"]["name"] for i in d.get("items", []))
    for sel in ("env=a", "env!=a", "env in (a,b)", "env notin (a)", "!env", "env", "env=a,env=b"):
        r.call("labelSelector " + sel, "GET", COLL, query={"labelSelector": f"s={r.prefix}," + sel},
               keep=names)
    r.call("bad labelSelector", "GET", COLL, query={"labelSelector": "env in a"})
    r.call("fieldSelector metadata.name", "GET", COLL,
           query={"fieldSelector": f"metadata.name={r.name('sel-b')}"}, keep=names)
    r.call("fieldSelector metadata.name!=", "GET", COLL,
           query={"labelSelector": f"s={r.prefix}", "fieldSelector": f"metadata.name!={r.name('sel-b')}"}, keep=names)
    r.call("unsupported fieldSelector", "GET", COLL, query={"fieldSelector": "spec.dir=x"})
    cleanup(r, "sel-a", "sel-b", "sel-c")


def finalizers(r):
    n = r.name("fin")
    path = f"{COLL}/{n}"
    r.call("create with a finalizer", "POST", COLL, obj(n, finalizers=["test.tilt.dev/hold"]))
    _, deleting = r.call("delete: pending", "DELETE", path)
    r.note("deletionTimestamp set", bool(deleting.get("metadata", {}).get("deletionTimestamp")))
    r.call("get while deleting", "GET", path, keep=lambda d: {
        "deleting": bool(d["metadata"].get("deletionTimestamp")), "grace": d["metadata"].get(
            "deletionGracePeriodSeconds")})
    r.call("spec update while deleting", "PATCH", path, {"spec": {"selector": "x"}},
           content_type="application/merge-patch+json", keep=lambda d: d.get("spec"))
    r.call("adding a finalizer while deleting", "PATCH", path,
           {"metadata": {"finalizers": ["test.tilt.dev/hold", "test.tilt.dev/new"]}},
           content_type="application/merge-patch+json", keep=lambda d: d["metadata"].get("finalizers"))
    r.call("delete again", "DELETE", path, keep=lambda d: d["metadata"].get("finalizers"))
    r.call("remove the finalizers", "PATCH", path, {"metadata": {"finalizers": None}},
           content_type="application/merge-patch+json", keep=lambda d: {})
    r.call("gone", "GET", path)


def delete_collection(r):
    for i in range(3):
        r.call(f"create {i}", "POST", COLL,
               obj(r.name(f"dc-{i}"), labels={"dc": r.prefix, "keep": str(i == 2).lower()}), keep=lambda d: {})
    names = lambda d: sorted(i["metadata"]["name"] for i in d.get("items", []))
    r.call("deletecollection", "DELETE", COLL, query={"labelSelector": f"dc={r.prefix},keep=false"},
           keep=lambda d: {"kind": d.get("kind"), "names": names(d)})
    r.call("what is left", "GET", COLL, query={"labelSelector": f"dc={r.prefix}"}, keep=names)
    cleanup(r, "dc-2")


def dry_run(r):
    n = r.name("dry")
    r.call("create dryRun", "POST", COLL, obj(n), query={"dryRun": "All"})
    r.call("not stored", "GET", f"{COLL}/{n}")
    r.call("create", "POST", COLL, obj(n), keep=lambda d: {})
    r.call("patch dryRun", "PATCH", f"{COLL}/{n}", {"spec": {"selector": "dry"}},
           content_type="application/merge-patch+json", query={"dryRun": "All"}, keep=lambda d: d.get("spec"))
    r.call("unchanged", "GET", f"{COLL}/{n}", keep=lambda d: d.get("spec"))
    r.call("delete dryRun", "DELETE", f"{COLL}/{n}", query={"dryRun": "All"}, keep=lambda d: {})
    r.call("still there", "GET", f"{COLL}/{n}", keep=lambda d: d["metadata"]["name"])
    r.call("bad dryRun", "POST", COLL, obj(n), query={"dryRun": "Some"})
    cleanup(r, "dry")


def generate_name(r):
    prefix = r.name("gen-")
    _, made = r.call("create", "POST", COLL, obj(prefix, generate=True),
                     keep=lambda d: {"generateName": d["metadata"].get("generateName")})
    name = made.get("metadata", {}).get("name", "")
    r.note("name is the prefix and 5 characters", bool(re.fullmatch(re.escape(prefix) + "[a-z0-9]{5}", name)))
    r.s.request("DELETE", f"{COLL}/{name}")
    r.call("generateName too long", "POST", COLL, obj("x" * 300, generate=True))


def validation(r):
    r.call("invalid name", "POST", COLL, obj(r.name("Not_Valid")))
    r.call("no name", "POST", COLL, {"apiVersion": "tilt.dev/v1alpha1", "kind": KIND,
                                                 "metadata": {}, "spec": {"selector": "x"}})
    r.call("missing required field", "POST", COLL,
           {"apiVersion": "tilt.dev/v1alpha1", "kind": KIND, "metadata": {"name": r.name("val")}, "spec": {}})
    r.call("wrong type", "POST", COLL,
           {"apiVersion": "tilt.dev/v1alpha1", "kind": KIND, "metadata": {"name": r.name("val")},
            "spec": {"selector": ["not", "a", "string"]}})
    r.call("wrong kind", "POST", COLL, dict(obj(r.name("val")), kind="FileWatch"))
    r.call("not json", "POST", COLL, "{oops")
    r.call("not a media type it takes", "POST", COLL, "x", content_type="text/plain")
    r.call("unknown field, Strict", "POST", COLL, dict(obj(r.name("strict")), bogus=1),
           query={"fieldValidation": "Strict"})
    resp = r.s.request("POST", COLL, dict(obj(r.name("warn")), bogus=1),
                       query={"fieldValidation": "Warn"})
    r.note("unknown field, Warn", {"code": resp.status, "warning": resp.headers.get("Warning", "")})
    r.call("unknown field, Ignore", "POST", COLL, dict(obj(r.name("ignore")), bogus=1),
           query={"fieldValidation": "Ignore"}, keep=lambda d: sorted(d))
    r.call("bad fieldValidation", "POST", COLL, obj(r.name("bad")), query={"fieldValidation": "Loose"})
    cleanup(r, "warn", "ignore", "strict", "Not_Valid")


def table(r):
    n = r.name("table")
    r.call("create", "POST", COLL, obj(n, selector="hi"), keep=lambda d: {})
    tbl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    shape = lambda d: {"kind": d.get("kind"), "apiVersion": d.get("apiVersion"),
                       "columns": d.get("columnDefinitions"),
                       "rows": [row.get("cells")[:1] + row.get("cells")[2:] for row in d.get("rows", [])],
                       "object": [sorted((row.get("object") or {}).get("metadata", {})) for row in d.get("rows", [])]}
    r.call("table of one", "GET", f"{COLL}/{n}", accept=tbl, keep=shape)
    r.call("table of a list", "GET", COLL, accept=tbl, query={"fieldSelector": f"metadata.name={n}"},
           keep=shape)
    r.call("table, no headers", "GET", f"{COLL}/{n}", accept=tbl, query={"includeObject": "None"},
           keep=shape)
    cleanup(r, "table")


def discovery(r):
    res = lambda d: sorted((x["name"], x.get("singularName"), x["namespaced"], x["kind"], tuple(x["verbs"]),
                            tuple(x.get("shortNames") or []), tuple(x.get("categories") or []))
                           for x in d.get("resources", []))
    r.call("group version resources", "GET", GROUP, keep=res)
    r.call("group", "GET", "/apis/tilt.dev", keep=lambda d: {k: d.get(k) for k in ("kind", "name", "versions",
                                                                                    "preferredVersion")})

    def aggregated(d):
        for g in d.get("items", []):
            if g["metadata"]["name"] == "tilt.dev":
                return g
        return None

    r.call("aggregated discovery", "GET", "/apis",
           accept="application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
           keep=lambda d: {"kind": d.get("kind"), "tilt.dev": aggregated(d)})


def openapi(r):
    _, index = r.call("v3 index has the group", "GET", "/openapi/v3",
                      keep=lambda d: "apis/tilt.dev/v1alpha1" in d.get("paths", {}))

    def shape(d):
        schemas = d.get("components", {}).get("schemas", {})
        kinds = {k: v for k, v in schemas.items() if k.startswith("dev.tilt.v1alpha1.")}
        return {"paths": sorted(p for p in d.get("paths", {}) if "/imagemaps" in p),
                "kinds": sorted(kinds), "imagemap": kinds.get("dev.tilt.v1alpha1.ImageMap")}

    r.call("v3 document of the group", "GET", "/openapi/v3/apis/tilt.dev/v1alpha1", keep=shape)


SCENARIOS = [crud, status_subresource, patches, server_side_apply, watch_replay, watch_expired, initial_events,
             pagination, selectors, finalizers, delete_collection, dry_run, generate_name, validation, table,
             discovery, openapi]


def first_difference(a, b, path=""):
    if type(a) is not type(b):
        return path or "/"
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return f"{path}/{k}"
            d = first_difference(a[k], b[k], f"{path}/{k}")
            if d:
                return d
        return None
    if isinstance(a, list):
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, f"{path}/{i}")
            if d:
                return d
        return f"{path}/{min(len(a), len(b))}" if len(a) != len(b) else None
    return None if a == b else (path or "/")


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    ours = Server("ours", sys.argv[1], sys.argv[2])
    theirs = Server("kube-apiserver", sys.argv[3], sys.argv[4])
    only = set(sys.argv[5:])
    prefix = "conf-%d-%d" % (os.getpid(), int(time.time() * 1000) % 100000)
    failed = 0
    for scenario in SCENARIOS:
        if only and scenario.__name__ not in only:
            continue
        runs = []
        for server in (ours, theirs):
            run = Run(server, prefix + "-" + scenario.__name__.replace("_", "")[:8])
            scenario(run)
            runs.append(run)
        a, b = runs[0].seen, runs[1].seen
        intended = []
        for x, y in zip(a, b):
            why = INTENDED.get((scenario.__name__, x.get("step")))
            if why and x.get("step") == y.get("step") and first_difference(x, y):
                intended.append(f"{x['step']}: {why}")
                x.clear(), y.clear()
        diff = first_difference(a, b)
        for line in intended:
            print(f"intended  {scenario.__name__}: {line}")
        if diff is None:
            print(f"same      {scenario.__name__}")
        else:
            failed += 1
            print(f"DIFFERENT {scenario.__name__} at {diff}")
            step = int(diff.split("/")[1]) if diff.count("/") >= 1 and diff.split("/")[1].isdigit() else None
            if step is not None and step < len(a) and step < len(b):
                print("  ours:           " + json.dumps(a[step], sort_keys=True))
                print("  kube-apiserver: " + json.dumps(b[step], sort_keys=True))
            else:
                print("  ours:           " + json.dumps(a, sort_keys=True)[:3000])
                print("  kube-apiserver: " + json.dumps(b, sort_keys=True)[:3000])
    for n in NORMALIZED:
        print(f"normalized: {n}")
    print(f"conformance: {len(SCENARIOS) if not only else len(only)} scenarios, {failed} unexpected differences")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
