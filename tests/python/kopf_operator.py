"""A kopf operator for the e2e test: annotates tilt.dev ConfigMaps when they are created, and records their
deletion (behind kopf's finalizer) in a file under $KOPF_TEST_OUT."""
import os
import pathlib

import kopf

OUT = pathlib.Path(os.environ["KOPF_TEST_OUT"])


@kopf.on.create("tilt.dev", "v1alpha1", "configmaps")
def created(name, patch, **_):
    patch.metadata.annotations["kopf-test/created"] = name


@kopf.on.delete("tilt.dev", "v1alpha1", "configmaps")
def deleted(name, **_):
    (OUT / f"deleted-{name}").write_text(name)
