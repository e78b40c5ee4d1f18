import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import type * as Forge from 'node-forge';

// node-forge is CommonJS whose exports Node cannot list for an ES import, so it is required, on
// first use: loading it takes a tenth of a second, which `hati` paid on every start.
let forgeLoaded: typeof Forge | undefined;
function forgeLib(): typeof Forge {
  forgeLoaded ??= createRequire(import.meta.url)('node-forge') as typeof Forge;
  return forgeLoaded;
}

/** A certificate and its private key, both PEM. */
export interface CertificatePair {
  cert: string;
  key: string;
}

export interface CertificateSet {
  /** The authority that signed the other two; give its `cert` to clients (and to the server as `tls.ca`). */
  ca: CertificatePair;
  /** For the server's TLS listeners: names `hosts` as subjectAltName, extended key usage serverAuth. */
  server: CertificatePair;
  /** For a client that must authenticate with a certificate: extended key usage clientAuth. */
  client: CertificatePair;
}

export interface CertificateOptions {
  /**
   * Host names and IP addresses the server certificate is valid for.
   * @default ['localhost', '127.0.0.1', '::1']
   */
  hosts?: string[];
  /** Days the certificates are valid, from `notBefore`. @default 365 */
  days?: number;
  /** Start of validity of all three certificates. @default five minutes ago (clocks differ a little) */
  notBefore?: Date;
  /** End of validity of all three certificates (a date in the past makes expired ones). @default notBefore + days */
  notAfter?: Date;
}

export const certificateDefaults = {
  hosts: ['localhost', '127.0.0.1', '::1'] as readonly string[],
  days: 365,
} as const;

const DAY_MS = 24 * 60 * 60 * 1000;

/** A key made by node:crypto (much faster than forge's JavaScript), loaded into forge. */
function newKeyPair(): { privateKey: Forge.pki.rsa.PrivateKey; publicKey: Forge.pki.rsa.PublicKey; pem: string } {
  const forge = forgeLib();
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  return {
    privateKey: forge.pki.privateKeyFromPem(privateKey),
    publicKey: forge.pki.publicKeyFromPem(publicKey),
    pem: privateKey,
  };
}

/** A random positive serial number of 128 bits, as RFC 5280 allows (at most 20 bytes). */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] as number) & 0x7f;
  return bytes.toString('hex');
}

function certificate(
  subject: string,
  publicKey: Forge.pki.rsa.PublicKey,
  validity: { notBefore: Date; notAfter: Date },
  extensions: object[],
): Forge.pki.Certificate {
  const forge = forgeLib();
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = serialNumber();
  cert.validity.notBefore = validity.notBefore;
  cert.validity.notAfter = validity.notAfter;
  cert.setSubject([
    { name: 'organizationName', value: 'Hati' },
    { name: 'commonName', value: subject },
  ]);
  cert.setExtensions(extensions);
  return cert;
}

/**
 * A certificate authority, a server certificate and a client certificate signed by it, for
 * development and tests (`hati tls self-signed`): RSA 2048 keys, SHA-256 signatures. The server
 * certificate names `hosts` (DNS names and IP addresses) as subjectAltName, which is what clients
 * verify; its common name is the first host.
 */
export function createCertificates(options: CertificateOptions = {}): CertificateSet {
  const forge = forgeLib();
  const hosts = options.hosts ?? [...certificateDefaults.hosts];
  if (hosts.length === 0) throw new TypeError('createCertificates: hosts must name at least one host');
  const notBefore = options.notBefore ?? new Date(Date.now() - 5 * 60 * 1000);
  const notAfter =
    options.notAfter ?? new Date(notBefore.getTime() + (options.days ?? certificateDefaults.days) * DAY_MS);
  if (notAfter.getTime() <= notBefore.getTime())
    throw new TypeError('createCertificates: notAfter must be later than notBefore');
  const validity = { notBefore, notAfter };
  const sha256 = () => forge.md.sha256.create();

  const caKeys = newKeyPair();
  const ca = certificate('Hati development CA', caKeys.publicKey, validity, [
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  ca.setIssuer(ca.subject.attributes);
  ca.sign(caKeys.privateKey, sha256());

  const leaf = (subject: string, publicKey: Forge.pki.rsa.PublicKey, usage: object[]) => {
    const cert = certificate(subject, publicKey, validity, [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      ...usage,
      { name: 'subjectKeyIdentifier' },
      { name: 'authorityKeyIdentifier', keyIdentifier: ca.generateSubjectKeyIdentifier().getBytes() },
    ]);
    cert.setIssuer(ca.subject.attributes);
    cert.sign(caKeys.privateKey, sha256());
    return forge.pki.certificateToPem(cert);
  };

  const serverKeys = newKeyPair();
  const altNames = hosts.map((host) => (isIP(host) === 0 ? { type: 2, value: host } : { type: 7, ip: host }));
  const server = leaf(hosts[0] as string, serverKeys.publicKey, [
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames },
  ]);

  const clientKeys = newKeyPair();
  const client = leaf('hati-client', clientKeys.publicKey, [{ name: 'extKeyUsage', clientAuth: true }]);

  return {
    ca: { cert: forge.pki.certificateToPem(ca), key: caKeys.pem },
    server: { cert: server, key: serverKeys.pem },
    client: { cert: client, key: clientKeys.pem },
  };
}
