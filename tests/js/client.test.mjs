// The Kubernetes JavaScript client (@kubernetes/client-node) against tilt up (context `tilt`) or kube-apiserver
// serving `tilt crds` (the context in $KUBE_CONTEXT), both from $KUBECONFIG: CustomObjectsApi create, get, list
// with a label selector, merge patch, the status subresource, and a Watch that sees the changes and the delete, on
// ImageMaps (a kind no controller of tilt up writes). Names and labels carry this process's id, so that runs
// sharing a cluster do not meet.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as k8s from '@kubernetes/client-node';

const GROUP = 'tilt.dev';
const VERSION = 'v1alpha1';
const PLURAL = 'imagemaps';
const ID = String(process.pid);
const NAME = `js-${ID}`;
const IMAGE = 'busybox:tilt-0123456789abcdef';

function config() {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(process.env.KUBECONFIG);
  kc.setCurrentContext(process.env.KUBE_CONTEXT || 'tilt');
  return kc;
}

test('CustomObjectsApi and Watch on tilt.dev ImageMaps', async () => {
  const kc = config();
  const api = kc.makeApiClient(k8s.CustomObjectsApi);
  const created = await api.createClusterCustomObject({
    group: GROUP,
    version: VERSION,
    plural: PLURAL,
    body: {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'ImageMap',
      metadata: { name: NAME, labels: { from: ID } },
      spec: { selector: 'busybox' },
    },
  });
  assert.equal(created.metadata.name, NAME);
  assert.equal(created.spec.selector, 'busybox');

  const got = await api.getClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, name: NAME });
  assert.equal(got.metadata.uid, created.metadata.uid);
  const listed = await api.listClusterCustomObject({
    group: GROUP,
    version: VERSION,
    plural: PLURAL,
    labelSelector: `from=${ID}`,
  });
  assert.deepEqual(listed.items.map((i) => i.metadata.name), [NAME]);

  // Watch from the list's resourceVersion: the patch, the status write and the delete arrive in order.
  const events = [];
  let done;
  const finished = new Promise((resolve) => (done = resolve));
  const watch = new k8s.Watch(kc);
  const request = await watch.watch(
    `/apis/${GROUP}/${VERSION}/${PLURAL}`,
    { resourceVersion: listed.metadata.resourceVersion, labelSelector: `from=${ID}` },
    (type, obj) => {
      events.push([type, obj.spec?.matchExact ?? false, obj.status?.image ?? '']);
      if (type === 'DELETED') done();
    },
    (err) => done(err),
  );

  const patched = await api.patchClusterCustomObject(
    { group: GROUP, version: VERSION, plural: PLURAL, name: NAME, body: { spec: { matchExact: true } } },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
  );
  assert.equal(patched.spec.matchExact, true);
  const withStatus = await api.patchClusterCustomObjectStatus(
    { group: GROUP, version: VERSION, plural: PLURAL, name: NAME, body: { status: { image: IMAGE } } },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
  );
  assert.equal(withStatus.status.image, IMAGE);
  assert.equal(withStatus.spec.matchExact, true);

  await api.deleteClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, name: NAME });
  const timeout = setTimeout(() => done(new Error(`no DELETED event; saw ${JSON.stringify(events)}`)), 15000);
  const err = await finished;
  clearTimeout(timeout);
  request.abort();
  assert.ifError(err);
  assert.deepEqual(events, [
    ['MODIFIED', true, ''],
    ['MODIFIED', true, IMAGE],
    ['DELETED', true, IMAGE],
  ]);

  await assert.rejects(
    api.getClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, name: NAME }),
    (e) => e.code === 404,
  );
});
