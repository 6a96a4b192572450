// A minimal self-signed X.509 certificate for the test IdP, built with node:crypto alone.
//
// node can generate and use RSA keys but has no API to issue a certificate, and the IdP's
// metadata and signatures need one (<ds:X509Certificate>). This file writes the DER by hand:
// a version 3 certificate without extensions, signed with sha256WithRSAEncryption, whose
// subject and issuer are one common name. Nothing is stored: a new key and certificate are made
// at every start.

import { X509Certificate, createPrivateKey, generateKeyPair, randomBytes, sign } from 'node:crypto';

function length(n) {
  if (n < 0x80) return Buffer.from([n]);
  const bytes = [];
  for (let rest = n; rest > 0; rest >>= 8) bytes.unshift(rest & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag, ...contents) {
  const body = Buffer.concat(contents);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
}

const sequence = (...items) => tlv(0x30, ...items);
const set = (...items) => tlv(0x31, ...items);
const nullValue = () => Buffer.from([0x05, 0x00]);
const utf8 = (text) => tlv(0x0c, Buffer.from(text, 'utf8'));
const bitString = (bytes) => tlv(0x03, Buffer.from([0x00]), bytes);
const explicit = (n, item) => tlv(0xa0 + n, item);

function integer(bytes) {
  let body = Buffer.from(bytes);
  while (body.length > 1 && body[0] === 0 && !(body[1] & 0x80)) body = body.subarray(1);
  if (body[0] & 0x80) body = Buffer.concat([Buffer.from([0]), body]);
  return tlv(0x02, body);
}

function oid(dotted) {
  const [first, second, ...rest] = dotted.split('.').map(Number);
  const bytes = [first * 40 + second];
  for (const arc of rest) {
    const chunk = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
    bytes.push(...chunk);
  }
  return tlv(0x06, Buffer.from(bytes));
}

function utcTime(date) {
  // UTCTime YYMMDDHHMMSSZ (valid for the years 1950-2049).
  const iso = date.toISOString();
  const text = iso.slice(2, 4) + iso.slice(5, 7) + iso.slice(8, 10)
    + iso.slice(11, 13) + iso.slice(14, 16) + iso.slice(17, 19) + 'Z';
  return tlv(0x17, Buffer.from(text, 'ascii'));
}

const SHA256_WITH_RSA = sequence(oid('1.2.840.113549.1.1.11'), nullValue());
const COMMON_NAME = '2.5.4.3';

/**
 * Generate an RSA key pair and a self-signed certificate for it.
 * @returns {Promise<{privateKeyPem: string, certPem: string, certBase64: string}>}
 */
export async function generateSelfSigned({ commonName, days = 30, modulusLength = 2048 } = {}) {
  const { publicKey, privateKey } = await new Promise((resolve, reject) => {
    generateKeyPair('rsa', { modulusLength }, (err, pub, priv) => {
      if (err) reject(err);
      else resolve({ publicKey: pub, privateKey: priv });
    });
  });
  const name = sequence(set(sequence(oid(COMMON_NAME), utf8(commonName))));
  const serial = randomBytes(16);
  serial[0] = (serial[0] & 0x7f) | 0x40; // positive and 16 bytes long
  const now = Date.now();
  const tbs = sequence(
    explicit(0, integer([2])), // version 3
    integer(serial),
    SHA256_WITH_RSA,
    name,
    sequence(utcTime(new Date(now - 24 * 3600 * 1000)), utcTime(new Date(now + days * 24 * 3600 * 1000))),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
  );
  const der = sequence(tbs, SHA256_WITH_RSA, bitString(sign('sha256', tbs, privateKey)));
  const certificate = new X509Certificate(der); // parses it back: a malformed DER throws here
  if (!certificate.verify(publicKey)) throw new Error('the self-signed certificate does not verify');
  const certBase64 = der.toString('base64');
  const certPem = `-----BEGIN CERTIFICATE-----\n${certBase64.match(/.{1,64}/g).join('\n')}\n-----END CERTIFICATE-----\n`;
  // PKCS#1 PEM: the form samlify's own helpers (node-rsa, normalizePemString) expect.
  const privateKeyPem = createPrivateKey(privateKey.export({ type: 'pkcs1', format: 'pem' }))
    .export({ type: 'pkcs1', format: 'pem' });
  return { privateKeyPem, certPem, certBase64 };
}
