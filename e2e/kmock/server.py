"""e2e/kmock/server.py — a Kubernetes API *emulator* for smoke runs: PyPI's kmock (0.8,
KubernetesEmulator: in-memory objects, list, watch, create, merge-patch, delete) plus the
few shims the lvs-operator's kube-rs clients need. Not an API server: see README.md.

    server.py --port 18080 [--host 0.0.0.0] [--log FILE]
    server.py apply --server URL FILE...      # create, or merge into, each YAML document
    server.py get --server URL PATH           # GET a path, print JSON

Shims over kmock 0.8 (each one a gap found against kube-rs; README.md lists them):
  * metadata.resourceVersion (one global counter), uid, generation, creationTimestamp are set
    (kmock sets none: kube-rs' watcher fails an object without resourceVersion);
    a list's metadata.resourceVersion is the counter (kmock: the string '...');
  * labelSelector (k=v, k!=v, k, !k, comma = and) on list and watch (kmock ignores it);
  * PATCH with application/apply-patch+yaml creates a missing object (server-side apply does;
    kmock answers 404); it is still a JSON merge, not a field-managed apply;
  * a PATCH of the status subresource changes only .status; a PATCH of the object ignores
    .status and bumps generation when it changes .spec (kmock merges the whole body either way);
  * a strategic merge patch merges `status.conditions` by `type`, `$patch: delete` removing one
    (kmock replaces lists whole: the controller's VIPReady condition on a Service would drop
    the others, and its removal would be stored as written);
  * a created CustomResourceDefinition makes its resource servable (kmock answers 404 on a list
    of a resource it has no object of);
  * core v1 Namespaces are served (list, watch, get, create): kmock reads /api/v1/namespaces/NAME
    as the prefix of a namespaced path and fails on /api/v1/namespaces itself.

`apply` creates the Namespace of every namespaced object it applies when there is none, as
`kubectl create namespace` would first on a real cluster (an API server refuses objects in a
namespace that does not exist; the emulator itself does not check).
"""
import argparse
import asyncio
import datetime
import itertools
import json
import sys
import urllib.error
import urllib.request
import uuid

import aiohttp.web
import attrs
import kmock
from kmock._internal import enums, parsing

CORE = ['v1/nodes', 'v1/namespaces', 'v1/events', 'v1/services', 'coordination.k8s.io/v1/leases',
        'discovery.k8s.io/v1/endpointslices', 'events.k8s.io/v1/events',
        'apiextensions.k8s.io/v1/customresourcedefinitions']


_parse_path = parsing.parse_path


def parse_path(path):
    """kmock's path parser, except that /api/v1/namespaces[/NAME[/status|finalize]] is the
    cluster-scoped resource `namespaces` (kmock takes it for a namespace prefix)."""
    parts = path.strip('/').split('/')
    if parts[:3] == ['api', 'v1', 'namespaces'] and (
            len(parts) <= 4 or (len(parts) == 5 and parts[4] in ('status', 'finalize'))):
        return parsing.ParsedPath(group='', version='v1', plural='namespaces',
                                  name=parts[3] if len(parts) > 3 else None,
                                  subresource=parts[4] if len(parts) > 4 else None)
    return _parse_path(path)


parsing.parse_path = parse_path  # kmock's Request._parse looks it up in the module at each call


def selector_matches(selector, labels):
    for term in filter(None, (t.strip() for t in selector.split(','))):
        if '!=' in term:
            k, v = term.split('!=', 1)
            if labels.get(k.strip()) == v.strip():
                return False
        elif '=' in term:
            k, v = term.split('=', 1)
            if labels.get(k.strip().rstrip('=')) != v.strip():
                return False
        elif term.startswith('!'):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def labels_of(obj):
    return (obj.get('metadata') or {}).get('labels') or {}


@attrs.define(kw_only=True)
class Emulator(kmock.KubernetesEmulator):
    counter: itertools.count = attrs.field(factory=lambda: itertools.count(1))
    log: object = None

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        for res in CORE:
            self.resources[res] = {}

    def _trace(self, request, note=''):
        if self.log:
            q = ('?' + request.url.query_string) if request.url.query_string else ''
            print(f'{datetime.datetime.now().time()} {request.method} {request.url.path}{q} {note}',
                  file=self.log, flush=True)

    def _key(self, request):
        return (request.resource, request.namespace, request.name)

    async def _handle(self, request):
        self._trace(request)
        data = request.data if isinstance(request.data, dict) else None
        if request.resource is not None and data is not None:
            meta = data.setdefault('metadata', {})
            if request.action == enums.action.CREATE:
                meta.update(resourceVersion=str(next(self.counter)), uid=str(uuid.uuid4()),
                            generation=1, creationTimestamp=now())
                if request.namespace and not meta.get('namespace'):
                    meta['namespace'] = request.namespace
                if request.resource.plural == 'customresourcedefinitions':
                    spec = data.get('spec', {})
                    for v in spec.get('versions', []):
                        self.resources[f"{spec['group']}/{v['name']}/{spec['names']['plural']}"] = {}
            elif request.action == enums.action.UPDATE:
                key = self._key(request)
                stored = self._objects[key] if key in self._objects else None
                if stored is None or stored.deleted:
                    ctype = request.headers.get('Content-Type', '')
                    if 'apply-patch' in ctype and not request.subresource:
                        meta.update(name=request.name, resourceVersion=str(next(self.counter)),
                                    uid=str(uuid.uuid4()), generation=1, creationTimestamp=now())
                        if request.namespace:
                            meta['namespace'] = request.namespace
                        self._trace(request, '(apply of a missing object: create)')
                        async with self._lock:
                            self._objects[key] = data
                            raw = self._objects[key].raw
                            await self._buses[request.resource].put({'type': 'ADDED', 'object': raw})
                        return aiohttp.web.json_response(raw, status=201)
                else:
                    old = stored.raw
                    for k in ('resourceVersion', 'uid', 'generation', 'creationTimestamp',
                              'managedFields'):
                        meta.pop(k, None)
                    if 'strategic-merge-patch' in request.headers.get('Content-Type', ''):
                        merge_conditions(data, old)
                    if request.subresource == 'status':
                        for k in list(data):
                            if k not in ('status', 'metadata', 'apiVersion', 'kind'):
                                data.pop(k)
                        data['metadata'] = meta = {}
                    else:
                        data.pop('status', None)
                        if 'spec' in data and merged_spec(old, data['spec']) != old.get('spec'):
                            meta['generation'] = old.get('metadata', {}).get('generation', 1) + 1
                    meta['resourceVersion'] = str(next(self.counter))
        return await super()._handle(request)

    async def _serve_list(self, request):
        result = await super()._serve_list(request)
        selector = request.params.get('labelSelector')
        if selector:
            result['items'] = [o for o in result['items'] if selector_matches(selector, labels_of(o))]
        result['metadata'] = {'resourceVersion': str(next(self.counter))}
        result.setdefault('apiVersion', 'v1')
        result.setdefault('kind', 'List')
        return result

    async def _serve_watch(self, request):
        selector = request.params.get('labelSelector')
        async for event in super()._serve_watch(request):
            if selector and isinstance(event, dict) and not selector_matches(selector, labels_of(event.get('object', {}))):
                continue
            yield event


def merged_spec(old, patch):
    """`old`'s spec with the merge patch `patch` applied (a dict merges, None removes)."""
    def merge(value, change):
        if not isinstance(change, dict):
            return change
        result = dict(value) if isinstance(value, dict) else {}
        for k, v in change.items():
            if v is None:
                result.pop(k, None)
            else:
                result[k] = merge(result.get(k), v)
        return result
    return merge(old.get('spec'), patch)


def merge_conditions(data, old):
    """Turns a strategic merge patch's `status.conditions` into the whole merged list (kmock then
    replaces the stored list with it): entries merged by `type`, `$patch: delete` removes one."""
    changes = (data.get('status') or {}).get('conditions')
    if not isinstance(changes, list):
        return
    merged = list((old.get('status') or {}).get('conditions') or [])
    for change in changes:
        merged = [c for c in merged if c.get('type') != change.get('type')]
        if change.get('$patch') != 'delete':
            merged.append(change)
    data['status']['conditions'] = merged


def now():
    return datetime.datetime.now(tz=datetime.UTC).strftime('%Y-%m-%dT%H:%M:%SZ')


async def serve(args):
    log = open(args.log, 'a') if args.log else None
    async with Emulator(log=log) as handler, kmock.Server(handler, host=args.host, port=args.port) as srv:
        print(f'kmock: serving a Kubernetes API emulator on http://{args.host}:{srv.port}', flush=True)
        await asyncio.Event().wait()


def plural_of(kind):
    return kind.lower() + 's'


def object_path(obj, with_name):
    api = obj['apiVersion']
    base = f'/api/{api}' if '/' not in api else f'/apis/{api}'
    ns = obj.get('metadata', {}).get('namespace')
    path = f'{base}/namespaces/{ns}' if ns else base
    path += '/' + plural_of(obj['kind'])
    return path + '/' + obj['metadata']['name'] if with_name else path


def call(server, method, path, body=None, ctype='application/json'):
    req = urllib.request.Request(server + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={'Content-Type': ctype})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def ensure_namespace(server, name, created):
    """Creates Namespace `name` unless it exists (`kubectl create namespace NAME`), with the
    `kubernetes.io/metadata.name` label an API server puts on every Namespace."""
    if name in created:
        return
    created.add(name)
    code, _ = call(server, 'GET', f'/api/v1/namespaces/{name}')
    if code != 404:
        return
    code, body = call(server, 'POST', '/api/v1/namespaces',
                      {'apiVersion': 'v1', 'kind': 'Namespace',
                       'metadata': {'name': name, 'labels': {'kubernetes.io/metadata.name': name}}})
    if code >= 300:
        print(f'kmock apply: namespace/{name}: HTTP {code}: {body.get("message")}', file=sys.stderr)
        sys.exit(1)
    print(f'namespace/{name} created')


def apply_objects(server, objects, namespaces=None):
    """`kubectl apply` of each object: created when missing (its Namespace first), else merged
    into the stored one (a JSON merge patch: lists are replaced whole)."""
    namespaces = set() if namespaces is None else namespaces
    for obj in objects:
        if not obj:
            continue
        namespace = obj.get('metadata', {}).get('namespace')
        if namespace:
            ensure_namespace(server, namespace, namespaces)
        code, _ = call(server, 'GET', object_path(obj, True))
        if code == 404:
            code, body = call(server, 'POST', object_path(obj, False), obj)
            verb = 'created'
        else:
            code, body = call(server, 'PATCH', object_path(obj, True), obj,
                              'application/merge-patch+json')
            verb = 'configured'
        what = f"{obj['kind'].lower()}/{obj['metadata']['name']}"
        if code >= 300:
            print(f'kmock apply: {what}: HTTP {code}: {body.get("message")}', file=sys.stderr)
            sys.exit(1)
        print(f'{what} {verb}')


def apply(args):
    import yaml
    namespaces = set()
    for file in args.files:
        with open(file) as f:
            apply_objects(args.server, list(yaml.safe_load_all(f)), namespaces)


def get(args):
    code, body = call(args.server, 'GET', args.path)
    json.dump(body, sys.stdout, indent=2)
    print()
    sys.exit(0 if code < 300 else 1)


def main():
    parser = argparse.ArgumentParser(prog='server.py')
    sub = parser.add_subparsers(dest='command')
    p = sub.add_parser('apply')
    p.add_argument('--server', required=True)
    p.add_argument('files', nargs='+')
    p = sub.add_parser('get')
    p.add_argument('--server', required=True)
    p.add_argument('path')
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=18080)
    parser.add_argument('--log')
    args = parser.parse_args()
    if args.command == 'apply':
        apply(args)
    elif args.command == 'get':
        get(args)
    else:
        asyncio.run(serve(args))


if __name__ == '__main__':
    main()
