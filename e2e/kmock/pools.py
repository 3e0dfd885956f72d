"""e2e/kmock/pools.py — the AddressPool scenarios of e2e/kmock/pools against a running emulator,
with the real lvs-controller (started, stopped and restarted here). Run by e2e/kmock/pools.

    pools.py --server URL --controller BIN --kubeconfig FILE --log FILE --metrics-port PORT

Three scenarios on one emulator, each in its own namespaces and address range:
  1. a pool admitting team-a only: team-b's VirtualServer is refused (NoAddressPool) and reaches
     no node config; team-a's gets an address from the pool;
  2. 50 VirtualServers without address in `bulk` (pool of 100): 50 distinct addresses, kept
     across a controller restart, and kept when the statuses are rotated while it is stopped
     (the recorded address wins, not a deterministic pick; half the rotated statuses in today's
     shape, half as a controller from before dual-stack wrote them: `address` alone);
  3. the `bulk` pool shrunk under its highest allocated address: that VirtualServer stays
     Accepted (reason OutsidePool) on the same address, listed in the pool's outsideAddresses.
Each check prints one line; the first failure ends the run (exit 1) with the controller's log tail.
"""
import argparse
import collections
import contextlib
import io
import ipaddress
import json
import os
import re
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server as kmock  # noqa: E402  (the emulator's apply/call helpers)

GROUP = '/apis/lvs.operator.io/v1alpha1'
DIRECTOR = 'director-1'
NODE_LABEL = 'lvs.operator.io/node'
TIMEOUT = 60  # seconds; the controller debounces 200 ms, a debug build lists 50 objects quickly


class Failure(Exception):
    pass


def check(ok, what, detail=''):
    print(f"pools: {'ok  ' if ok else 'FAIL'} {what}" + (f' ({detail})' if detail and not ok else ''),
          flush=True)
    if not ok:
        raise Failure(what)


def poll(probe, timeout=TIMEOUT):
    """probe() until it returns a truthy value or `timeout` passes; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


class Api:
    def __init__(self, server):
        self.server = server

    def get(self, path):
        code, body = kmock.call(self.server, 'GET', path)
        return body if code == 200 else None

    def items(self, path):
        return (self.get(path) or {}).get('items', [])

    def virtual_servers(self, namespace):
        return {o['metadata']['name']: o for o in self.items(f'{GROUP}/namespaces/{namespace}/virtualservers')}

    def pool(self, name):
        return self.get(f'{GROUP}/addresspools/{name}') or {}

    def configs(self):
        return self.items(f'{GROUP}/lvsnodeconfigs')

    def director_services(self, namespace):
        """name → address of `namespace`'s services in the director's configs (every shard)."""
        services = {}
        for config in self.configs():
            if config['metadata'].get('labels', {}).get(NODE_LABEL) != DIRECTOR:
                continue
            for service in config.get('spec', {}).get('directorServices') or []:
                ns, _, name = service['virtualServer'].partition('/')
                if ns == namespace:
                    services[name] = service['address']
        return services

    def apply(self, *objects):
        """server.py's `apply` of `objects`; one summary line instead of one per object."""
        lines = io.StringIO()
        with contextlib.redirect_stdout(lines):
            kmock.apply_objects(self.server, list(objects))
        verbs = collections.Counter(line.rsplit(' ', 1)[-1] for line in lines.getvalue().splitlines())
        print('pools: applied ' + ', '.join(f'{n} {verb}' for verb, n in sorted(verbs.items())), flush=True)

    def patch_status(self, obj, status):
        meta = obj['metadata']
        path = f"{GROUP}/namespaces/{meta['namespace']}/virtualservers/{meta['name']}/status"
        code, body = kmock.call(self.server, 'PATCH', path, {'status': status}, 'application/merge-patch+json')
        if code != 200:
            check(False, f"status of {meta['namespace']}/{meta['name']} rewritten", f'HTTP {code}: {body}')


class Controller:
    def __init__(self, binary, kubeconfig, log, metrics_port):
        self.binary, self.kubeconfig, self.log, self.metrics_port = binary, kubeconfig, log, metrics_port
        self.process = None

    def start(self):
        env = dict(os.environ, KUBECONFIG=self.kubeconfig, NO_COLOR='1')
        with open(self.log, 'a') as log:
            print(f'--- pools: controller started {time.strftime("%T")}', file=log, flush=True)
            self.process = subprocess.Popen(
                [self.binary, '--metrics-address', f'127.0.0.1:{self.metrics_port}', '--debounce-ms', '200'],
                env=env, stdout=log, stderr=subprocess.STDOUT)
        # a pass finished: the restarted controller has read everything and written what differs
        runs = poll(self.successful_runs)
        check(runs >= 1, 'controller started and finished a reconcile pass', f'{runs} passes')

    def successful_runs(self):
        if self.process.poll() is not None:
            raise Failure(f'the controller exited with {self.process.returncode}')
        try:
            with urllib.request.urlopen(f'http://127.0.0.1:{self.metrics_port}/metrics', timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return 0
        m = re.search(r'^lvs_controller_reconcile_runs_total\{result="success"\} (\d+)', text, re.M)
        return int(m.group(1)) if m else 0

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def condition(obj, type_):
    for c in (obj or {}).get('status', {}).get('conditions') or []:
        if c.get('type') == type_:
            return c
    return {}


def virtual_server(namespace, name, address=None):
    spec = {'port': 80, 'protocol': 'TCP', 'scheduler': 'rr', 'forwarding': {'method': 'DirectRouting'},
            'realServers': {'selector': {'matchLabels': {'app': 'web'}}, 'arpMethod': 'Sysctl'}}
    if address:
        spec['address'] = address
    return {'apiVersion': 'lvs.operator.io/v1alpha1', 'kind': 'VirtualServer',
            'metadata': {'name': name, 'namespace': namespace}, 'spec': spec}


def real_servers(namespace):
    return [{'apiVersion': 'lvs.operator.io/v1alpha1', 'kind': 'RealServer',
             'metadata': {'name': name, 'namespace': namespace, 'labels': {'app': 'web'}},
             'spec': {'address': address, 'weight': 1}}
            for name, address in (('web-1', '10.100.0.11'), ('web-2', '10.100.0.12'))]


def pool(name, addresses, namespaces):
    return {'apiVersion': 'lvs.operator.io/v1alpha1', 'kind': 'AddressPool', 'metadata': {'name': name},
            'spec': {'addresses': addresses, 'namespaces': namespaces}}


def in_range(address, first, last):
    return ipaddress.ip_address(first) <= ipaddress.ip_address(address) <= ipaddress.ip_address(last)


def tenants(api, results):
    print('pools: scenario 1: a pool admitting team-a only', flush=True)
    api.apply(pool('team-a', ['10.100.1.100-10.100.1.110'], ['team-a']),
              *real_servers('team-a'), *real_servers('team-b'),
              virtual_server('team-a', 'web'),  # no address: picked from the pool
              virtual_server('team-b', 'web', '10.100.1.105'))  # in the range, not its namespace's

    def settled():
        a, b = api.virtual_servers('team-a').get('web'), api.virtual_servers('team-b').get('web')
        return condition(b, 'Accepted') and (a or {}).get('status', {}).get('address') \
            and 'web' in api.director_services('team-a') and (a, b)
    found = poll(settled)
    check(bool(found), "both VirtualServers have a status and team-a's service reached the director")
    admitted, refused = found
    accepted = condition(refused, 'Accepted')
    check(accepted.get('status') == 'False', 'team-b/web: Accepted=False', accepted)
    check(accepted.get('reason') == 'NoAddressPool', 'team-b/web: reason NoAddressPool', accepted)
    check('address' not in refused['status'], 'team-b/web: no status.address', refused['status'])
    mentions = [c['metadata']['name'] for c in api.configs() if 'team-b' in json.dumps(c)]
    check(not mentions, 'no LvsNodeConfig mentions team-b', mentions)
    status = admitted['status']
    check(condition(admitted, 'Accepted').get('status') == 'True', 'team-a/web: Accepted=True', status)
    check(in_range(status['address'], '10.100.1.100', '10.100.1.110') and status.get('addressPool') == 'team-a',
          f"team-a/web: status.address {status['address']} from pool team-a", status)
    served = api.director_services('team-a')
    check(served == {'web': status['address']}, "the director serves team-a/web on its status.address", served)
    results.update(refused_reason=accepted['reason'], admitted_address=status['address'])


def bulk(api, controller, results):
    print('pools: scenario 2: 50 VirtualServers without address, pool of 100, restarts', flush=True)
    names = [f'svc-{i:02}' for i in range(50)]
    api.apply(pool('bulk', ['10.100.2.100-10.100.2.199'], ['bulk']), *real_servers('bulk'),
              *(virtual_server('bulk', name) for name in names))

    def addresses():
        return {n: o.get('status', {}).get('address') for n, o in api.virtual_servers('bulk').items()}

    def all_picked():
        picked = addresses()
        return len(picked) == 50 and all(picked.values()) and api.director_services('bulk') == picked and picked
    picked = poll(all_picked) or addresses()
    check(len(picked) == 50 and all(picked.values()), '50 VirtualServers have a status.address',
          f'{sum(map(bool, picked.values()))} of {len(picked)}')
    objects = api.virtual_servers('bulk')
    pools_of = {o['status'].get('addressPool') for o in objects.values()}
    check(pools_of == {'bulk'}, 'every status.addressPool is bulk', pools_of)
    distinct = len(set(picked.values()))
    check(distinct == 50, '50 distinct addresses', distinct)
    outside = [a for a in picked.values() if not in_range(a, '10.100.2.100', '10.100.2.199')]
    check(not outside, 'every address inside the pool 10.100.2.100-10.100.2.199', outside)
    check(api.director_services('bulk') == picked, "the director's services are on the status addresses")
    results['distinct_addresses'] = distinct

    controller.stop()
    print('pools: controller stopped; starting it again on the same emulator state', flush=True)
    controller.start()
    poll(lambda: api.director_services('bulk') == picked and addresses() == picked)
    now, served = addresses(), api.director_services('bulk')
    kept = sum(now.get(n) == a for n, a in picked.items())
    check(kept == 50, 'after a restart every status.address is unchanged', f'{kept} of 50')
    check(served == picked, "after a restart the director's services are on the same addresses",
          f'{sum(served.get(n) == a for n, a in picked.items())} of 50')
    results['kept_after_restart'] = kept

    controller.stop()
    rotated = dict(zip(names, [picked[n] for n in names[1:] + names[:1]]))
    print('pools: controller stopped; each status now records the next one\'s address', flush=True)
    for index, name in enumerate(names):
        recorded = {'address': rotated[name], 'addressPool': 'bulk'}
        if index % 2:
            # As this controller writes it: every VIP in `addresses` too, and the VIP column.
            recorded |= {'addresses': [dict(recorded)], 'vip': rotated[name]}
        else:
            # As a controller from before dual-stack wrote it: `address` alone.
            recorded |= {'addresses': None, 'vip': None}
        api.patch_status(objects[name], recorded)
    check(addresses() == rotated, 'the emulator holds the rotated statuses')
    controller.start()
    poll(lambda: api.director_services('bulk') == rotated and addresses() == rotated)
    now, served = addresses(), api.director_services('bulk')
    kept = sum(now.get(n) == a for n, a in rotated.items())
    check(kept == 50, 'after a restart every rotated status.address is kept', f'{kept} of 50')
    check(served == rotated, "the director's services follow the rotated addresses",
          f'{sum(served.get(n) == a for n, a in rotated.items())} of 50')
    results['kept_after_rotation'] = kept
    return rotated


def shrink(api, allocated, results):
    print('pools: scenario 3: the bulk pool shrunk under its highest allocated address', flush=True)
    name, address = max(allocated.items(), key=lambda item: ipaddress.ip_address(item[1]))
    last = str(ipaddress.ip_address(address) - 1)
    api.apply(pool('bulk', [f'10.100.2.100-{last}'], ['bulk']))
    print(f'pools: bulk is now 10.100.2.100-{last}; {name} keeps {address}', flush=True)

    def flagged():
        obj = api.virtual_servers('bulk').get(name)
        return condition(obj, 'Accepted').get('reason') == 'OutsidePool' \
            and api.pool('bulk').get('status', {}).get('outsideAddresses') and obj
    obj = poll(flagged) or api.virtual_servers('bulk').get(name)
    accepted = condition(obj, 'Accepted')
    check(accepted.get('status') == 'True', f'{name}: still Accepted=True', accepted)
    check(accepted.get('reason') == 'OutsidePool', f'{name}: reason OutsidePool', accepted)
    check(obj['status'].get('address') == address, f'{name}: status.address still {address}', obj['status'])
    served = api.director_services('bulk')
    check(served.get(name) == address, f"{name}: the director's LvsNodeConfig still serves {address}", served.get(name))
    check(served == allocated, "every other service unchanged in the director's config")
    outside = api.pool('bulk').get('status', {}).get('outsideAddresses')
    check(outside == [address], f"pool bulk: status.outsideAddresses == ['{address}']", outside)
    others = [n for n, o in api.virtual_servers('bulk').items()
              if n != name and condition(o, 'Accepted').get('reason') == 'OutsidePool']
    check(not others, 'no other VirtualServer flagged OutsidePool', others)
    results.update(outside_addresses=len(outside), outside_reason=accepted['reason'])


def main():
    parser = argparse.ArgumentParser(prog='pools.py')
    for arg in ('--server', '--controller', '--kubeconfig', '--log'):
        parser.add_argument(arg, required=True)
    parser.add_argument('--metrics-port', type=int, required=True)
    parser.add_argument('--nodes', default='examples/nodes.yaml')
    args = parser.parse_args()
    api = Api(args.server)
    controller = Controller(args.controller, args.kubeconfig, args.log, args.metrics_port)
    results = {}
    try:
        import yaml
        with open(args.nodes) as f:
            api.apply(*yaml.safe_load_all(f))
        controller.start()
        tenants(api, results)
        allocated = bulk(api, controller, results)
        shrink(api, allocated, results)
    except Failure as failure:
        print(f'pools: FAILED: {failure}', flush=True)
        return 1
    finally:
        controller.stop()
        for key, value in results.items():
            print(f'{key}={value}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
