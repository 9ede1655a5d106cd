// Drives isomorphic-git for the client matrix (tests/e2e/test_client_matrix.py).
//
// Usage: node isogit_client.mjs '<json>' with NODE_PATH naming the node_modules that holds
// isomorphic-git. The JSON names one operation ("clone", "fetch" or "push") and its
// options; the token comes from ISOGIT_TOKEN and is sent as HTTP Basic. HTTPS trust comes
// from NODE_EXTRA_CA_CERTS (the test's own CA). Prints one JSON line with the result and
// exits non-zero on any error, printing the error's code and message on stderr.
import fs from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const git = require('isomorphic-git');
const http = require('isomorphic-git/http/node');

const args = JSON.parse(process.argv[2]);
const token = process.env.ISOGIT_TOKEN || '';
const common = {
  fs,
  http,
  dir: args.dir,
  onAuth: () => ({ username: 'x', password: token }),
  onAuthFailure: () => ({ cancel: true }),
};

function shallowOptions(a) {
  const out = {};
  if (a.depth !== undefined) out.depth = a.depth;
  if (a.since !== undefined) out.since = new Date(a.since * 1000);
  if (a.exclude !== undefined) out.exclude = a.exclude;
  if (a.relative !== undefined) out.relative = a.relative;
  return out;
}

async function main() {
  let result = {};
  if (args.op === 'clone') {
    await git.clone({
      ...common,
      url: args.url,
      ref: args.ref,
      singleBranch: args.singleBranch ?? false,
      noCheckout: args.noCheckout ?? false,
      noTags: args.noTags ?? false,
      ...shallowOptions(args),
    });
  } else if (args.op === 'fetch') {
    const res = await git.fetch({
      ...common,
      remote: 'origin',
      ref: args.ref,
      singleBranch: args.singleBranch ?? false,
      tags: args.tags ?? false,
      prune: args.prune ?? false,
      ...shallowOptions(args),
    });
    result = { fetchHead: res.fetchHead };
  } else if (args.op === 'push') {
    const res = await git.push({
      ...common,
      ...(args.url ? { url: args.url } : { remote: 'origin' }),
      ref: args.ref,
      remoteRef: args.remoteRef,
      force: args.force ?? false,
      delete: args.delete ?? false,
    });
    result = { ok: res.ok, refs: res.refs };
    if (!res.ok) throw new Error(`push rejected: ${JSON.stringify(res.refs)}`);
  } else {
    throw new Error(`unknown op ${args.op}`);
  }
  process.stdout.write(JSON.stringify(result) + '\n');
}

main().catch((err) => {
  process.stderr.write(`${err.code || 'Error'}: ${err.message}\n`);
  process.exit(1);
});
