"""The Python kubernetes client against tilt up: DynamicClient CRUD and watch.Watch, via the `tilt` context."""
import threading
import time

from kubernetes import config, dynamic, watch
from kubernetes.client import CustomObjectsApi, api_client

config.load_kube_config(context="tilt")
client = dynamic.DynamicClient(api_client.ApiClient())
cmds = client.resources.get(api_version="tilt.dev/v1alpha1", kind="Cmd")

created = cmds.create(body={
    "apiVersion": "tilt.dev/v1alpha1",
    "kind": "Cmd",
    "metadata": {"name": "py", "labels": {"from": "python"}},
    "spec": {"args": ["echo", "hi"]},
})
assert created.metadata.name == "py"
assert cmds.get(name="py").spec.args == ["echo", "hi"]
listed = cmds.get(label_selector="from=python")
assert [i.metadata.name for i in listed.items] == ["py"], listed
rv = listed.metadata.resourceVersion

patched = cmds.patch(name="py", body={"spec": {"dir": "/tmp"}}, content_type="application/merge-patch+json")
assert patched.spec.dir == "/tmp"

seen = []
def watch_events():
    w = watch.Watch()
    custom = CustomObjectsApi()
    for event in w.stream(custom.list_cluster_custom_object, "tilt.dev", "v1alpha1", "cmds",
                          resource_version=rv, timeout_seconds=10):
        seen.append((event["type"], event["object"]["metadata"]["name"]))
        if event["type"] == "DELETED":
            w.stop()

t = threading.Thread(target=watch_events)
t.start()
time.sleep(0.3)
cmds.delete(name="py")
t.join(15)
assert ("MODIFIED", "py") in seen and ("DELETED", "py") in seen, seen
# The DynamicClient's own watch, from the start: the current objects arrive as ADDED.
cmds.create(body={"apiVersion": "tilt.dev/v1alpha1", "kind": "Cmd", "metadata": {"name": "py2"}, "spec": {"args": ["x"]}})
for event in cmds.watch(timeout=5):
    assert (event["type"], event["object"].metadata.name) == ("ADDED", "py2"), event
    break
print("python client: ok")
