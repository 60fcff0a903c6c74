// A private CA made with the openssl command for a test (no key is committed): `issue(serial)`
// (re)writes leaf.pem / leaf.key for localhost and 127.0.0.1, signed by it. Shared by the
// interop and window tests.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

function makePki() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stock-test-pki-'));
  const openssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '30', '-subj', '/CN=Stock Test CA');
  fs.writeFileSync(path.join(dir, 'leaf.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  return {
    dir,
    caFile: path.join(dir, 'ca.pem'),
    ca: fs.readFileSync(path.join(dir, 'ca.pem')),
    cert: path.join(dir, 'leaf.pem'),
    key: path.join(dir, 'leaf.key'),
    issue(serial) {
      openssl('req', ...ec, '-keyout', 'next.key', '-out', 'next.csr', '-subj', '/CN=localhost');
      openssl('x509', '-req', '-in', 'next.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', String(serial),
        '-days', '30', '-extfile', 'leaf.ext', '-out', 'next.pem');
      // Key first, then the certificate: a reload between the two sees a mismatch and keeps the old pair.
      fs.renameSync(path.join(dir, 'next.key'), this.key);
      fs.renameSync(path.join(dir, 'next.pem'), this.cert);
      return this;
    },
    remove() { fs.rmSync(dir, { recursive: true, force: true }); },
  };
}

module.exports = { makePki };
