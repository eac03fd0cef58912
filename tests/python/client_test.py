"""The Python kubernetes client against tilt up (context `tilt`) or kube-apiserver serving `tilt crds` (the context
in $KUBE_CONTEXT): DynamicClient CRUD and watch.Watch. Names and labels carry this process's id, so that runs
sharing a cluster do not meet."""
import os
import threading
import time

from kubernetes import config, dynamic, watch
from kubernetes.client import CustomObjectsApi, api_client

config.load_kube_config(context=os.environ.get("KUBE_CONTEXT", "tilt"))
ID = str(os.getpid())
PY, PY2 = f"py-{ID}", f"py2-{ID}"
client = dynamic.DynamicClient(api_client.ApiClient())
cmds = client.resources.get(api_version="tilt.dev/v1alpha1", kind="Cmd")

created = cmds.create(body={
    "apiVersion": "tilt.dev/v1alpha1",
    "kind": "Cmd",
    "metadata": {"name": PY, "labels": {"from": ID}},
    "spec": {"args": ["echo", "hi"]},
})
assert created.metadata.name == PY
assert cmds.get(name=PY).spec.args == ["echo", "hi"]
listed = cmds.get(label_selector=f"from={ID}")
assert [i.metadata.name for i in listed.items] == [PY], listed
rv = listed.metadata.resourceVersion

patched = cmds.patch(name=PY, body={"spec": {"dir": "/tmp"}}, content_type="application/merge-patch+json")
assert patched.spec.dir == "/tmp"

seen = []
def watch_events():
    w = watch.Watch()
    custom = CustomObjectsApi()
    for event in w.stream(custom.list_cluster_custom_object, "tilt.dev", "v1alpha1", "cmds",
                          resource_version=rv, timeout_seconds=10, label_selector=f"from={ID}"):
        seen.append((event["type"], event["object"]["metadata"]["name"]))
        if event["type"] == "DELETED":
            w.stop()

t = threading.Thread(target=watch_events)
t.start()
time.sleep(0.3)
cmds.delete(name=PY)
t.join(15)
assert ("MODIFIED", PY) in seen and ("DELETED", PY) in seen, seen
# The DynamicClient's own watch, from the start: the current objects arrive as ADDED.
cmds.create(body={"apiVersion": "tilt.dev/v1alpha1", "kind": "Cmd",
                  "metadata": {"name": PY2, "labels": {"from": ID}}, "spec": {"args": ["x"]}})
for event in cmds.watch(timeout=5, label_selector=f"from={ID}"):
    assert (event["type"], event["object"].metadata.name) == ("ADDED", PY2), event
    break
cmds.delete(name=PY2)
print("python client: ok")
